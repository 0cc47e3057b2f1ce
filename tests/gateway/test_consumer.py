"""Consumer behaviour through Channels' WebsocketCommunicator: every bad input of issue #2."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from django.contrib.auth import get_user_model
from django.core import signing
from django.test import override_settings

from realtime_project.gateway import runtime
from realtime_project.gateway.api import apublish, asend_to_user
from realtime_project.gateway.auth import TICKET_SALT, issue_ticket
from tests.support.ws import Client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture):  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)
    yield
    for record in caplog.records:
        assert record.exc_info is None, f"unexpected traceback: {record.getMessage()}"
        assert record.levelno < logging.ERROR, record.getMessage()


async def _user(username: str = "alice", staff: bool = False):  # type: ignore[no-untyped-def]
    from channels.db import database_sync_to_async

    def create():  # type: ignore[no-untyped-def]
        return get_user_model().objects.create_user(username=username, password="pw", is_staff=staff)

    return await database_sync_to_async(create)()


async def subscribe(client: Client, channel: str, frame_id: object = 1) -> dict:  # type: ignore[type-arg]
    """Subscribe and consume the snapshot a durable/snapshot channel may send after it."""
    reply = await client.request({"type": "subscribe", "id": frame_id, "channel": channel})
    if reply["type"] == "subscribed":
        while not await client.nothing(0.1):
            extra = await client.recv()
            assert extra["type"] == "message" and extra.get("snapshot") is True, extra
    return reply


async def connected(**kwargs) -> Client:  # type: ignore[no-untyped-def]
    client = Client(**kwargs)
    assert await client.connect()
    return client


async def test_welcome_frame_fields() -> None:
    client = await connected()
    welcome = client.welcome
    assert welcome is not None
    assert welcome["protocol"] == 1
    assert welcome["user"] is None
    assert welcome["heartbeat"] == {"interval": 25000, "timeout": 10000}
    assert isinstance(welcome["server_time"], int) and welcome["server_time"] > 1_600_000_000_000
    assert welcome["session"].endswith(":" + welcome["session"].split(":")[-1])
    await client.close()


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "bad_request"),
        ("[1, 2, 3]", "bad_request"),
        ('"text"', "bad_request"),
        ("{}", "bad_request"),
        ('{"type": 5}', "bad_request"),
        ('{"type": "no such"}', "bad_request"),
        # A malformed type still echoes the frame's id (issue #12, finding 14).
        ('{"type": "no.such.type", "id": "u1"}', "bad_request"),
        ('{"type": 7, "id": 3}', "bad_request"),
        ('{"id": "no-type"}', "bad_request"),
        ('{"type": "nosuch.thing", "id": 4}', "unknown_type"),
        ('{"type": "subscribe", "id": 5}', "bad_request"),
        ('{"type": "subscribe", "id": 6, "channel": 7}', "bad_request"),
        ('{"type": "subscribe", "id": 7, "channel": "Prices:BTC"}', "bad_request"),
        ('{"type": "subscribe", "id": 8, "channel": "prices:BTC/x"}', "bad_request"),
        ('{"type": "subscribe", "id": 9, "channel": "nosuch:thing"}', "not_found"),
        ('{"type": "subscribe", "id": 10, "channel": "market:other"}', "bad_request"),
        ('{"type": "subscribe", "id": 11, "channel": "wallet:0x12"}', "bad_request"),
        ('{"type": "subscribe", "id": 12, "channel": "notifications"}', "unauthenticated"),
        ('{"type": "subscribe", "id": 13, "channel": "prices:BTC", "since": {"epoch": "e", "seq": -1}}', "bad_request"),
        (
            '{"type": "subscribe", "id": 14, "channel": "prices:BTC", "since": {"epoch": "e", "seq": 1.5}}',
            "bad_request",
        ),
        ('{"type": "subscribe", "id": 15, "channel": "prices:BTC", "max_rate": 0}', "bad_request"),
        ('{"type": "subscribe", "id": 16, "channel": "prices:BTC", "max_rate": -2}', "bad_request"),
        ('{"type": "subscribe", "id": 17, "channel": "prices:BTC", "max_rate": 1e9}', "bad_request"),
        ('{"type": "unsubscribe", "id": 18, "channel": "prices:ETH"}', "not_subscribed"),
        ('{"type": "auth", "id": 19}', "bad_request"),
        ('{"type": "auth", "id": 20, "ticket": "forged"}', "unauthenticated"),
    ],
)
async def test_bad_frames_get_documented_errors(raw: str, code: str, no_tracebacks: None) -> None:
    client = await connected()
    other = await connected()
    reply = await client.request(raw)
    assert reply["type"] == "error"
    assert reply["code"] == code, reply
    frame = json.loads(raw) if raw.startswith("{") else None
    expected_id = frame.get("id") if isinstance(frame, dict) else None
    assert reply["id"] == expected_id
    assert "Traceback" not in reply["message"]
    # The connection stays usable, and the other connection is unaffected.
    assert (await client.request({"type": "ping", "id": "after"}))["type"] == "pong"
    assert (await other.request({"type": "ping", "id": "other"}))["id"] == "other"
    await client.close()
    await other.close()


async def test_binary_frame_is_unsupported(no_tracebacks: None) -> None:
    client = await connected()
    await client.comm.send_to(bytes_data=b"\x00\x01")
    reply = await client.recv()
    assert reply["code"] == "unsupported"
    await client.close()


async def test_frame_over_64_kib_is_too_large(no_tracebacks: None) -> None:
    client = await connected()
    frame = json.dumps({"type": "ping", "id": 1, "pad": "x" * (64 * 1024)})
    reply = await client.request(frame)
    assert reply["code"] == "too_large"
    # Just under the limit is fine.
    ok = json.dumps({"type": "ping", "id": 2, "pad": "x" * (64 * 1024 - 100)})
    assert (await client.request(ok))["type"] == "pong"
    await client.close()


async def test_multibyte_frame_over_limit_in_bytes_is_too_large() -> None:
    client = await connected()
    frame = json.dumps({"type": "ping", "pad": "é" * (40 * 1024)}, ensure_ascii=False)  # < 64 Ki chars, > 64 KiB
    assert len(frame) < 64 * 1024 < len(frame.encode())
    assert (await client.request(frame))["code"] == "too_large"
    await client.close()


async def test_subscribe_twice_and_unsubscribe() -> None:
    client = await connected()
    first = await client.request({"type": "subscribe", "id": 1, "channel": "prices:eth"})
    assert first["type"] == "subscribed" and first["channel"] == "prices:ETH"
    second = await client.request({"type": "subscribe", "id": 2, "channel": "prices:ETH"})
    assert second["code"] == "already_subscribed" and second["id"] == 2
    gone = await client.request({"type": "unsubscribe", "id": 3, "channel": "prices:eth"})
    assert gone == {"type": "unsubscribed", "id": 3, "channel": "prices:ETH"}
    await apublish("prices:ETH", {"p": 1})
    assert await client.nothing()
    again = await client.request({"type": "unsubscribe", "id": 4, "channel": "prices:ETH"})
    assert again["code"] == "not_subscribed"
    await client.close()


@override_settings(REALTIME={"MAX_SUBSCRIPTIONS": 3})
async def test_subscription_limit() -> None:
    client = await connected()
    for i, symbol in enumerate(["A", "B", "C"]):
        assert (await client.request({"type": "subscribe", "id": i, "channel": f"prices:{symbol}"}))[
            "type"
        ] == "subscribed"
    reply = await client.request({"type": "subscribe", "id": 9, "channel": "prices:D"})
    assert reply["code"] == "subscription_limit"
    await client.close()


@override_settings(REALTIME={"RATE_LIMIT_PER_SECOND": 1, "RATE_LIMIT_BURST": 5, "FLOOD_CLOSE_AFTER": 1000})
async def test_flood_over_rate_limit_gets_rate_limited_and_others_unaffected() -> None:
    from realtime_project.gateway.router import router

    # The middleware instance was built at startup with the default threshold; the
    # bucket itself comes from settings per connection.
    assert router.middleware
    client = await connected()
    other = await connected()
    replies = []
    for i in range(12):
        replies.append(await client.request({"type": "ping", "id": i}))
    codes = [r.get("code") for r in replies]
    assert codes[:5] == [None] * 5
    assert codes[5:].count("rate_limited") >= 6
    limited = next(r for r in replies if r.get("code") == "rate_limited")
    assert limited["details"]["retry_after_ms"] > 0
    assert (await other.request({"type": "ping", "id": "x"}))["type"] == "pong"
    await client.close()
    await other.close()


async def test_persistent_flood_closes_with_4429(settings) -> None:  # type: ignore[no-untyped-def]
    settings.REALTIME = {
        **settings.REALTIME,
        "RATE_LIMIT_PER_SECOND": 0.01,
        "RATE_LIMIT_BURST": 1,
        "FLOOD_CLOSE_AFTER": 3,
    }
    client = await connected()
    await client.request({"type": "ping", "id": 0})
    replies = [await client.request({"type": "ping", "id": i}) for i in range(3)]
    assert [r["code"] for r in replies] == ["rate_limited"] * 3
    assert [r["id"] for r in replies] == [0, 1, 2]  # small refused frames still echo their id
    assert "slow down" in replies[0]["message"] and "closing" in replies[2]["message"]
    closed = await client.comm.receive_output(timeout=2)
    assert closed == {"type": "websocket.close", "code": 4429}


@pytest.mark.parametrize(
    "frame",
    [
        "{",  # fails to decode
        '{"type": "pong", "id": "s1"}',  # pongs are frames like any other
        "[" + ",".join(["1234567"] * 7_500) + "]",  # 60 KB that are not an object
    ],
)
async def test_every_frame_spends_tokens_and_a_flood_of_any_kind_is_closed(settings, frame: str) -> None:  # type: ignore[no-untyped-def]
    settings.REALTIME = {**settings.REALTIME, "FLOOD_CLOSE_AFTER": 10}
    client = await connected()
    for _ in range(200):
        await client.send(frame)
    codes: list[str] = []
    while True:
        out = await client.comm.receive_output(timeout=3)
        if out["type"] == "websocket.close":
            break
        codes.append(json.loads(out["text"])["code"])
    assert out["code"] == 4429
    # Answered until the burst (40 tokens; a 60 KB frame costs 16) was spent, then 10
    # refusals in a row, then nothing more: not 200 answers.
    assert codes.count("rate_limited") == 10 and len(codes) <= 50, codes
    assert await client.nothing(0.2)


async def test_the_per_user_limit_applies_to_auth_frames(settings) -> None:  # type: ignore[no-untyped-def]
    settings.REALTIME = {**settings.REALTIME, "MAX_CONNECTIONS_PER_USER": 2}
    alice, bob = await _user("alice"), await _user("bob")
    signed_in = [await connected(path=f"/ws/?ticket={issue_ticket(alice.pk)[0]}") for _ in range(2)]
    assert all(c.welcome and c.welcome["user"]["id"] == alice.pk for c in signed_in)
    # A third socket opened anonymously and upgraded with a ticket is refused and closed.
    upgrader = await connected()
    error = await upgrader.request({"type": "auth", "id": "a1", "ticket": issue_ticket(alice.pk)[0]})
    assert error == {
        "type": "error",
        "id": "a1",
        "code": "rate_limited",
        "message": "too many connections for this user",
    }
    assert await upgrader.comm.receive_output(timeout=2) == {"type": "websocket.close", "code": 4429}
    # Another user upgrades as before; the first user's sockets are untouched.
    other = await connected()
    reply = await other.request({"type": "auth", "id": "b1", "ticket": issue_ticket(bob.pk)[0]})
    assert reply["type"] == "authenticated" and reply["user"] == {"id": bob.pk}
    assert (await signed_in[0].request({"type": "ping", "id": 1}))["type"] == "pong"
    # Re-authenticating as the same user on a counted socket is not a new connection.
    again = await signed_in[1].request({"type": "auth", "id": "a2", "ticket": issue_ticket(alice.pk)[0]})
    assert again["type"] == "authenticated"
    for c in [*signed_in, other]:
        await c.close()


async def test_forged_and_expired_ticket_close_4401(settings) -> None:  # type: ignore[no-untyped-def]
    client = Client(path="/ws/?ticket=forged")
    assert await client.connect(expect_welcome=False)
    error = await client.recv()
    assert error["type"] == "error" and error["code"] == "unauthenticated"
    assert await client.comm.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}

    user = await _user()
    expired = signing.dumps({"u": user.pk, "n": "old"}, salt=TICKET_SALT)
    settings.REALTIME = {**settings.REALTIME, "TICKET_TTL": -1}
    client = Client(path=f"/ws/?ticket={expired}")
    assert await client.connect(expect_welcome=False)
    error = await client.recv()
    assert error["code"] == "unauthenticated" and "expired" in error["message"]


async def test_ticket_authenticates_once_only() -> None:
    user = await _user()
    ticket, _ = issue_ticket(user.pk)
    client = Client(path=f"/ws/?ticket={ticket}")
    assert await client.connect()
    assert client.welcome is not None and client.welcome["user"]["id"] == user.pk
    reply = await subscribe(client, "notifications")
    assert reply["type"] == "subscribed" and reply["channel"] == "notifications"
    await client.close()
    replay = Client(path=f"/ws/?ticket={ticket}")
    assert await replay.connect(expect_welcome=False)
    error = await replay.recv()
    assert error["code"] == "unauthenticated" and "already used" in error["message"]


async def test_auth_frame_upgrades_anonymous_connection_and_drops_private_channels_on_switch() -> None:
    alice, bob = await _user("alice"), await _user("bob")
    client = await connected()
    assert (await client.request({"type": "subscribe", "id": 1, "channel": "notifications"}))[
        "code"
    ] == "unauthenticated"
    ticket, _ = issue_ticket(alice.pk)
    assert await client.request({"type": "auth", "id": 2, "ticket": ticket}) == {
        "type": "authenticated",
        "id": 2,
        "user": {"id": alice.pk},
    }
    assert (await subscribe(client, "notifications", 3))["type"] == "subscribed"
    assert (await client.request({"type": "subscribe", "id": 4, "channel": "prices:BTC"}))["type"] == "subscribed"
    ticket, _ = issue_ticket(bob.pk)
    await client.send({"type": "auth", "id": 5, "ticket": ticket})
    dropped = await client.recv()
    assert dropped == {"type": "unsubscribed", "id": None, "channel": "notifications", "reason": "auth_changed"}
    assert (await client.recv())["user"] == {"id": bob.pk}
    # Bob does not receive Alice's notifications; the public channel stays.
    await apublish(f"notifications:{alice.pk}", {"event": "x"})
    assert await client.nothing()
    await apublish("prices:BTC", {"p": 2})
    assert (await client.recv())["channel"] == "prices:BTC"
    await client.close()


async def test_session_user_and_private_channel_isolation() -> None:
    alice, bob = await _user("alice"), await _user("bob")
    a = await connected(user=alice)
    b = await connected(user=bob)
    assert a.welcome is not None and a.welcome["user"]["id"] == alice.pk
    assert (await subscribe(a, "notifications"))["type"] == "subscribed"
    assert (await subscribe(b, "notifications"))["type"] == "subscribed"
    await apublish(f"notifications:{alice.pk}", {"hello": "alice"})
    got = await a.recv()
    assert got["channel"] == "notifications" and got["data"] == {"hello": "alice"}
    assert await b.nothing()
    # Someone else's wallet is forbidden.
    reply = await b.request({"type": "subscribe", "id": 2, "channel": "wallet:0x" + "ab" * 20})
    assert reply["code"] == "forbidden"
    await asend_to_user(bob.pk, {"direct": True})
    assert await b.recv() == {"type": "message", "channel": "user", "data": {"direct": True}}
    assert await a.nothing()
    await a.close()
    await b.close()


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (b"http://evil.example", False),
        (b"null", False),
        (b"http://localhost:8000", True),
        (b"http://127.0.0.1:5173", True),
        (None, True),
    ],
)
async def test_origin_validation(origin: bytes | None, allowed: bool) -> None:
    headers = [(b"origin", origin)] if origin is not None else []
    client = Client(headers=headers)
    connected_ok = await client.connect(expect_welcome=allowed)
    assert connected_ok is allowed
    if allowed:
        await client.close()


async def test_heartbeat_timeout_closes_4408(settings) -> None:  # type: ignore[no-untyped-def]
    settings.REALTIME = {**settings.REALTIME, "HEARTBEAT_INTERVAL": 0.2, "HEARTBEAT_TIMEOUT": 0.5}
    quiet = await connected()
    lively = await connected()

    async def answer_pings(count: int) -> None:
        for _ in range(count):
            ping = await lively.recv(timeout=2)
            assert ping["type"] == "ping"
            await lively.send({"type": "pong", "id": ping["id"]})

    answering = asyncio.ensure_future(answer_pings(6))
    frames = []
    while True:  # the quiet client gets pings (a second one is a miss), then the error
        frame = await quiet.recv(timeout=2)
        frames.append(frame)
        if frame["type"] != "ping":
            break
        assert frame["id"].startswith("s") and isinstance(frame["server_time"], int)
    assert len(frames) >= 2
    assert frames[-1]["type"] == "error" and frames[-1]["code"] == "unavailable"
    assert await quiet.comm.receive_output(timeout=2) == {"type": "websocket.close", "code": 4408}
    # The connection that answers every ping stays open and gets an RTT.
    await answering
    hub = runtime.current_hub()
    assert hub is not None
    closed, open_ = sorted(hub.connections, key=lambda c: not c.closing)
    assert closed.close_code == 4408 and closed.heartbeat.answered == 0
    assert open_.rtt is not None and open_.heartbeat.answered >= 3 and not open_.closing
    await lively.close()


async def test_publisher_payload_not_serialisable_sends_nothing() -> None:
    client = await connected()
    await client.request({"type": "subscribe", "id": 1, "channel": "prices:BTC"})
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        await apublish("prices:BTC", {"bad": object()})
    with pytest.raises(ValueError, match="unknown channel namespace"):
        await apublish("nosuch:BTC", {"ok": 1})
    assert await client.nothing()
    pub = await apublish("prices:BTC", {"ok": 1})
    assert pub.seq == 1  # the failed calls consumed no seq
    assert (await client.recv())["seq"] == 1
    await client.close()


async def test_frames_out_are_counted_by_type() -> None:
    from prometheus_client import REGISTRY

    kinds = ("welcome", "pong", "subscribed", "message", "error", "unsubscribed")

    def counts() -> dict[str, float]:
        return {k: REGISTRY.get_sample_value("realtime_frames_out_total", {"type": k}) or 0.0 for k in kinds}

    before = counts()
    client = await connected()
    await client.request({"type": "ping", "id": 1})
    await subscribe(client, "prices:OUTX")
    await apublish("prices:OUTX", {"p": 1})
    assert (await client.recv())["type"] == "message"
    await client.request({"type": "nosuch.thing", "id": 2})
    await client.request({"type": "unsubscribe", "id": 3, "channel": "prices:OUTX"})
    after = counts()
    await client.close()
    assert {k: after[k] - before[k] for k in kinds} == {
        "welcome": 1,
        "pong": 1,
        "subscribed": 1,
        "message": 1,
        "error": 1,
        "unsubscribed": 1,
    }
