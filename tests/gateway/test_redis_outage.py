"""Redis going away and coming back: connections stay, /readyz says so, delivery resumes."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
import redis as redis_sync
import websockets

from realtime_project.gateway.api import publish
from tests.support.redis_server import RedisServer, use_private_redis
from tests.support.servers import ops_request
from tests.support.ws import recv_live

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.e2e]


def readyz(base: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(ops_request(f"{base}/readyz"), timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_for(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


async def test_gateway_survives_redis_restart(
    private_redis: RedisServer, live_server_factory: Any, settings: Any, key_prefix: str
) -> None:
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": private_redis.url, "socket_timeout": 15}], "prefix": key_prefix},
        }
    }
    settings.REALTIME = {**settings.REALTIME, "HISTORY_REDIS_URL": private_redis.url, "KEY_PREFIX": key_prefix}
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    server = live_server_factory(server="daphne", redis=private_redis.url, key_prefix=key_prefix)
    async with websockets.connect(server.ws_url) as ws:
        assert (await recv_live(ws))["type"] == "welcome"
        await ws.send(json.dumps({"type": "subscribe", "id": 1, "channel": "prices:BTC"}))
        assert (await recv_live(ws))["type"] == "subscribed"
        await asyncio.to_thread(publish, "prices:BTC", {"n": 1})
        first = await recv_live(ws)
        if first.get("snapshot"):  # the channel's latest price, when the database has one
            first = await recv_live(ws)
        assert first["data"] == {"n": 1}
        assert (await asyncio.to_thread(readyz, server.http_url))[0] == 200

        private_redis.stop()
        await asyncio.to_thread(wait_for, lambda: readyz(server.http_url)[0] == 503)
        _status, body = await asyncio.to_thread(readyz, server.http_url)
        assert body["status"] == "not_ready" and body["channel_layer"]["ok"] is False
        # The WebSocket stays open and keeps answering.
        await ws.send(json.dumps({"type": "ping", "id": "during"}))
        assert (await recv_live(ws))["id"] == "during"
        with pytest.raises(redis_sync.RedisError):  # the publisher gets a clear error at the call site
            await asyncio.to_thread(publish, "prices:BTC", {"n": "lost"})

        private_redis.start()  # same port, empty: memberships and history are gone
        await asyncio.to_thread(wait_for, lambda: readyz(server.http_url)[0] == 200)
        await asyncio.sleep(0.5)  # let the hub's probe re-join its groups
        channel_layers.backends.clear()

        async def delivered() -> dict[str, Any]:
            for attempt in range(20):
                await asyncio.to_thread(publish, "prices:BTC", {"n": 2, "attempt": attempt})
                try:
                    return await recv_live(ws, timeout=1)
                except TimeoutError:
                    continue
            raise AssertionError("delivery did not resume")

        message = await delivered()
        assert message["data"]["n"] == 2 and message["seq"] == 1  # a new epoch after the flush
    log = server.read_log()
    assert log.count("channel layer unreachable") == 1, log  # one clear error per incident
    assert "reachable again" in log


async def test_a_new_epoch_after_a_redis_restart_reaches_live_subscribers_from_seq_1(
    private_redis: RedisServer, live_server_factory: Any, settings: Any, key_prefix: str
) -> None:
    """Fault A: publications made after Redis came back, before the gateway re-subscribed,
    reach no gateway through pub/sub; the subscriber must still get the new epoch from
    seq 1, in order (repaired from history), never a silent jump to seq N."""
    from django.contrib.auth import get_user_model

    from realtime_project.gateway.auth import issue_ticket

    use_private_redis(settings, private_redis, key_prefix)
    server = live_server_factory(server="uvicorn", redis=private_redis.url, key_prefix=key_prefix)
    user = await asyncio.to_thread(get_user_model().objects.create_user, "dora", password="pw")
    ticket, _ = issue_ticket(user.pk)
    channel = f"notifications:{user.pk}"
    async with websockets.connect(f"{server.ws_url}?ticket={ticket}") as ws:
        assert (await recv_live(ws))["type"] == "welcome"
        await ws.send(json.dumps({"type": "subscribe", "id": 1, "channel": "notifications"}))
        subscribed = await recv_live(ws)
        assert subscribed["type"] == "subscribed", subscribed
        snapshot = await recv_live(ws)  # durable: the state rebuilt by the app
        assert snapshot.get("snapshot") is True, snapshot
        await asyncio.to_thread(publish, channel, {"n": 0})
        before = await recv_live(ws)
        assert before["seq"] == subscribed["seq"] + 1

        private_redis.stop()
        private_redis.start()  # empty: history, epochs and subscriptions are gone
        channel_layers_clear()
        sent = []
        for n in range(1, 7):  # at once: the gateway has not re-subscribed yet
            sent.append(await asyncio.to_thread(publish, channel, {"n": n}))
        assert [p.seq for p in sent] == [1, 2, 3, 4, 5, 6]
        got = [await recv_live(ws) for _ in range(6)]
        assert [(m["seq"], m["data"]["n"]) for m in got] == [(n, n) for n in range(1, 7)]
        assert {m["epoch"] for m in got} == {sent[0].epoch} != {before["epoch"]}
        await asyncio.to_thread(publish, channel, {"n": 7})
        live = await recv_live(ws)
        assert (live["seq"], live["data"]["n"]) == (7, 7)
    assert "new epoch" in server.read_log()


def channel_layers_clear() -> None:
    from channels.layers import channel_layers

    channel_layers.backends.clear()
