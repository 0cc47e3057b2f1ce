"""Scale-out: two real gateway processes on one Redis, publishing from a third process.

Also the graceful drain (SIGTERM → `reconnect` + close 1012) and permessage-deflate
negotiation on both servers.
"""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.request
from typing import Any

import pytest
import websockets
from django.contrib.auth import get_user_model

from realtime_project.gateway.api import publish, send_to_user
from realtime_project.gateway.auth import issue_ticket
from tests.support.servers import ops_request
from tests.support.ws import recv_live as recv

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.e2e]


async def subscribe(ws: Any, channel: str, *, snapshot: bool = False, **extra: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "subscribe", "id": channel, "channel": channel, **extra}))
    reply = await recv(ws)
    assert reply["type"] == "subscribed", reply
    if snapshot:  # durable channels start with the state the app rebuilds
        first = await recv(ws)
        assert first["type"] == "message" and first["snapshot"] is True, first
    return reply


def cluster_readyz(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(ops_request(f"{base}/readyz"), timeout=5) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


async def test_two_gateways_publish_send_to_user_and_recovery_across_gateways(
    live_server_factory: Any, redis_settings: Any, redis_url: str, key_prefix: str
) -> None:
    a = live_server_factory(server="daphne", redis=redis_url, key_prefix=key_prefix)
    b = live_server_factory(server="daphne", redis=redis_url, key_prefix=key_prefix)
    user = await asyncio.to_thread(get_user_model().objects.create_user, "carol", password="pw")
    ticket_a, _ = issue_ticket(user.pk)
    ticket_b, _ = issue_ticket(user.pk)
    async with (
        websockets.connect(a.ws_url) as anon_a,
        websockets.connect(b.ws_url) as anon_b,
        websockets.connect(f"{a.ws_url}?ticket={ticket_a}") as user_a,
        websockets.connect(f"{b.ws_url}?ticket={ticket_b}") as user_b,
    ):
        for ws in (anon_a, anon_b, user_a, user_b):
            assert (await recv(ws))["type"] == "welcome"
        sub_a = await subscribe(anon_a, "prices:BTC")
        await subscribe(anon_b, "prices:BTC")
        await subscribe(user_a, "notifications", snapshot=True)
        await subscribe(user_b, "notifications", snapshot=True)

        # A publication from this (third) process reaches subscribers on both gateways.
        for i in range(5):
            await asyncio.to_thread(publish, "prices:BTC", {"i": i})
        for ws in (anon_a, anon_b):
            got = [await recv(ws) for _ in range(5)]
            assert [m["data"]["i"] for m in got] == list(range(5))
            assert [m["seq"] for m in got] == [1, 2, 3, 4, 5]

        # send_to_user reaches the user's connections on both gateways, nobody else.
        await asyncio.to_thread(send_to_user, user.pk, {"hello": "both"})
        for ws in (user_a, user_b):
            assert await recv(ws) == {"type": "message", "channel": "user", "data": {"hello": "both"}}
        # and the per-user notifications channel too.
        await asyncio.to_thread(publish, f"notifications:{user.pk}", {"event": "created"})
        for ws in (user_a, user_b):
            message = await recv(ws)
            assert message["channel"] == "notifications" and message["data"] == {"event": "created"}
        with pytest.raises(TimeoutError):
            await recv(anon_a, timeout=0.3)

        # Presence (refreshed about a second after connection changes) sees both gateways.
        for _ in range(50):
            cluster = (await asyncio.to_thread(cluster_readyz, a.http_url))["cluster"]
            if cluster["connections"] == 4:
                break
            await asyncio.sleep(0.2)
        assert cluster == {"ok": True, "gateways": 2, "connections": 4, "users": 1}
        from realtime_project.gateway.presence import user_connections

        assert await user_connections(user.pk) == 2  # one on each gateway
        assert await user_connections(user.pk + 1000) == 0

        # A client leaves gateway A, misses publications, resumes on gateway B.
        await anon_a.close()
        for i in range(5, 12):
            await asyncio.to_thread(publish, "prices:BTC", {"i": i})
        async with websockets.connect(b.ws_url) as moved:
            assert (await recv(moved))["type"] == "welcome"
            reply = await subscribe(moved, "prices:BTC", since={"epoch": sub_a["epoch"], "seq": 5})
            # Gateway B may not have received seq 12 yet: then it follows live, in order.
            assert reply["recovered"] is True and reply["seq"] in (11, 12)
            replay = [await recv(moved) for _ in range(7)]
            assert [m["data"]["i"] for m in replay] == list(range(5, 12))
            assert [m["seq"] for m in replay] == list(range(6, 13))
            with pytest.raises(TimeoutError):
                await recv(moved, timeout=0.3)


async def test_killed_gateway_presence_expires(
    live_server_factory: Any, redis_settings: Any, redis_url: str, key_prefix: str
) -> None:
    extra = {"REALTIME_PRESENCE_TTL": "2"}
    a = live_server_factory(server="daphne", redis=redis_url, key_prefix=key_prefix, extra=extra)
    b = live_server_factory(server="daphne", redis=redis_url, key_prefix=key_prefix, extra=extra)
    async with websockets.connect(b.ws_url) as ws:
        assert (await recv(ws))["type"] == "welcome"
        await asyncio.sleep(1.0)
        assert (await asyncio.to_thread(cluster_readyz, a.http_url))["cluster"]["gateways"] == 2
        b.kill()  # SIGKILL: no chance to withdraw its entries
    deadline = asyncio.get_running_loop().time() + 10
    while asyncio.get_running_loop().time() < deadline:
        if (await asyncio.to_thread(cluster_readyz, a.http_url))["cluster"]["gateways"] == 1:
            break
        await asyncio.sleep(0.5)
    else:
        raise AssertionError("the killed gateway's presence did not expire")


@pytest.mark.parametrize("server_kind", ["daphne", "uvicorn"])
async def test_sigterm_drains_with_reconnect_frames_and_1012(
    server_kind: str, live_server_factory: Any, redis_settings: Any, redis_url: str, key_prefix: str
) -> None:
    server = live_server_factory(
        server=server_kind, redis=redis_url, key_prefix=key_prefix, extra={"REALTIME_DRAIN_MAX_DELAY_MS": "3000"}
    )
    clients = [await websockets.connect(server.ws_url) for _ in range(4)]
    try:
        for ws in clients:
            assert (await recv(ws))["type"] == "welcome"
            await subscribe(ws, "prices:ETH")
        for i in range(20):
            await asyncio.to_thread(publish, "prices:ETH", {"i": i})
        server.signal(signal.SIGTERM)
        delays = []
        for ws in clients:
            # Frames the gateway had are flushed, in order and gap-free, before the
            # reconnect frame; any still in flight in Redis are recovered with `since`.
            frame = await recv(ws)
            seqs = []
            while frame["type"] == "message":
                seqs.append(frame["seq"])
                frame = await recv(ws)
            assert seqs == list(range(1, len(seqs) + 1))
            assert frame["type"] == "reconnect" and frame["reason"] == "server_restart"
            assert 0 <= frame["after_ms"] < 3000
            delays.append(frame["after_ms"])
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await recv(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        assert len(set(delays)) > 1, "delays are jittered"
        # uvicorn re-raises the signal once it has shut down cleanly; daphne exits 0.
        assert await asyncio.to_thread(server.wait, 15) in (0, -signal.SIGTERM)
        assert "drained 4 connections" in server.read_log()
    finally:
        for ws in clients:
            await ws.close()


@pytest.mark.parametrize("server_kind", ["daphne", "uvicorn"])
async def test_permessage_deflate_is_negotiated(server_kind: str, live_server_factory: Any) -> None:
    server = live_server_factory(server=server_kind)
    async with websockets.connect(server.ws_url) as ws:  # the client offers permessage-deflate
        assert (await recv(ws))["type"] == "welcome"
        names = [ext.name for ext in ws.protocol.extensions]
        assert names == ["permessage-deflate"], names
    async with websockets.connect(server.ws_url, compression=None) as plain:
        assert (await recv(plain))["type"] == "welcome"
        assert plain.protocol.extensions == []


async def test_gateway_killed_during_batch_publishing_clients_recover_on_the_other_with_nothing_lost(
    live_server_factory: Any, redis_settings: Any, redis_url: str, key_prefix: str
) -> None:
    """Issue #10: `kill -9` of a gateway while batches are published; its client resumes
    on the other gateway with `since` per channel: every seq once, in order."""
    import threading

    from realtime_project.gateway.api import publish_many

    a = live_server_factory(server="uvicorn", redis=redis_url, key_prefix=key_prefix)
    b = live_server_factory(server="uvicorn", redis=redis_url, key_prefix=key_prefix)
    channels = [f"prices:K{i}" for i in range(20)]
    batches = 60
    seen: dict[str, list[int]] = {ch: [] for ch in channels}
    epochs: dict[str, str] = {}
    recovered: dict[str, bool] = {}
    halfway = threading.Event()

    def publisher() -> None:
        for n in range(batches):
            publish_many([(ch, {"n": n}) for ch in channels])
            if n == batches // 3:
                halfway.set()
            threading.Event().wait(0.01)

    async def read(ws: Any, until_closed: bool) -> None:
        while not all(len(s) == batches for s in seen.values()):
            try:
                frame = await recv(ws, timeout=10)
            except websockets.ConnectionClosed:
                if until_closed:
                    return
                raise
            if frame["type"] == "subscribed":
                recovered[frame["channel"]] = frame["recovered"]
            if frame["type"] == "message" and not frame.get("snapshot"):
                seen[frame["channel"]].append(frame["seq"])
                epochs[frame["channel"]] = frame["epoch"]

    async with websockets.connect(a.ws_url) as ws:
        assert (await recv(ws))["type"] == "welcome"
        start: dict[str, int] = {}
        for ch in channels:
            reply = await subscribe(ws, ch)
            epochs[ch], start[ch] = reply["epoch"], reply["seq"]
        assert set(start.values()) == {0}
        thread = threading.Thread(target=publisher)
        thread.start()
        reader = asyncio.ensure_future(read(ws, until_closed=True))
        await asyncio.to_thread(halfway.wait)
        a.kill()  # SIGKILL mid-publishing: no drain, no close frame
        await asyncio.wait_for(reader, 15)
    async with websockets.connect(b.ws_url) as ws:
        assert (await recv(ws))["type"] == "welcome"
        for ch in channels:  # replays and live messages interleave with the next replies
            since = {"epoch": epochs[ch], "seq": seen[ch][-1] if seen[ch] else 0}
            await ws.send(json.dumps({"type": "subscribe", "id": ch, "channel": ch, "since": since}))
        await asyncio.wait_for(read(ws, until_closed=False), 30)
        assert recovered == dict.fromkeys(channels, True)
        await asyncio.to_thread(thread.join)
    for ch in channels:
        assert seen[ch] == list(range(1, batches + 1)), (ch, seen[ch])
