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
    from realtime_project.gateway import middleware
    from realtime_project.gateway.router import router

    limiter = next(m for m in router.middleware if isinstance(m, middleware.RateLimit))
    old = limiter.close_after
    limiter.close_after = 3
    settings.REALTIME = {**settings.REALTIME, "RATE_LIMIT_PER_SECOND": 0.01, "RATE_LIMIT_BURST": 1}
    try:
        client = await connected()
        await client.request({"type": "ping", "id": 0})
        replies = [await client.request({"type": "ping", "id": i}) for i in range(3)]
        assert [r["code"] for r in replies] == ["rate_limited"] * 3
        assert "slow down" in replies[0]["message"] and "closing" in replies[2]["message"]
        closed = await client.comm.receive_output(timeout=2)
        assert closed == {"type": "websocket.close", "code": 4429}
    finally:
        limiter.close_after = old


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
