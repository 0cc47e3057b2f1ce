"""End to end: a real server process, a real WebSocket client, a publish from elsewhere.

welcome → subscribe → publish from another process → message → ping/pong →
heartbeat timeout close; run against daphne with the in-memory layer (the publish
comes over the operator REST endpoint) and against the Redis layer with daphne and
uvicorn (the publish comes from this test process through `publish()`).
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

import pytest
import websockets
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from realtime_project.gateway.api import publish
from tests.support.ws import recv_live

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def _publish_over_http(base: str, token: str, channel: str, data: Any) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base}/api/publish/",
        data=json.dumps({"channel": channel, "data": data}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


async def _recv(ws: Any, timeout: float = 5) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))  # type: ignore[no-any-return]


async def _scenario(url: str, do_publish: Any) -> None:
    async with websockets.connect(url) as ws:
        welcome = await _recv(ws)
        assert welcome["type"] == "welcome" and welcome["protocol"] == 1
        assert welcome["heartbeat"] == {"interval": 400, "timeout": 1200}
        await ws.send(json.dumps({"type": "subscribe", "id": "s1", "channel": "prices:btc"}))
        subscribed = await _recv(ws)
        assert subscribed["type"] == "subscribed" and subscribed["channel"] == "prices:BTC"
        assert subscribed["id"] == "s1" and subscribed["seq"] == 0

        published = await asyncio.to_thread(do_publish, "prices:BTC", {"symbol": "BTC", "price": 97000.5})
        message = await recv_live(ws, timeout=5)  # answering heartbeats that arrive meanwhile
        assert message == {
            "type": "message",
            "channel": "prices:BTC",
            "seq": published["seq"],
            "epoch": published["epoch"],
            "data": {"symbol": "BTC", "price": 97000.5},
        }
        assert published["seq"] == 1 and published["epoch"] == subscribed["epoch"]

        await ws.send(json.dumps({"type": "ping", "id": 42}))
        pong = await recv_live(ws, timeout=5)
        assert pong["type"] == "pong" and pong["id"] == 42 and isinstance(pong["server_time"], int)

        # Stop answering server pings: the server closes with 4408 after the timeout.
        pings = 0
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                frame = await _recv(ws, timeout=5)
                pings += frame["type"] == "ping"
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
        assert pings >= 1


@pytest.fixture
def admin_token() -> str:
    user = get_user_model().objects.create_user("ops", password="pw", is_staff=True)
    return Token.objects.create(user=user).key


HEARTBEAT = {"heartbeat_interval": 0.4, "heartbeat_timeout": 1.2}


async def test_e2e_daphne_in_memory_layer(live_server_factory: Any, admin_token: str) -> None:
    server = live_server_factory(server="daphne", **HEARTBEAT)
    await _scenario(server.ws_url, lambda ch, data: _publish_over_http(server.http_url, admin_token, ch, data))


@pytest.mark.redis
@pytest.mark.parametrize("server_kind", ["daphne", "uvicorn"])
async def test_e2e_redis_layer(
    server_kind: str, live_server_factory: Any, redis_settings: Any, redis_url: str, key_prefix: str
) -> None:
    server = live_server_factory(server=server_kind, redis=redis_url, key_prefix=key_prefix, **HEARTBEAT)

    def do_publish(channel: str, data: Any) -> dict[str, Any]:
        pub = publish(channel, data)
        return {"seq": pub.seq, "epoch": pub.epoch}

    await _scenario(server.ws_url, do_publish)


async def test_publish_endpoint_requires_staff_and_validates(live_server_factory: Any, admin_token: str) -> None:
    server = live_server_factory(server="daphne")
    anonymous = urllib.request.Request(f"{server.http_url}/api/publish/", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as denied:
        await asyncio.to_thread(urllib.request.urlopen, anonymous, None, 5)
    assert denied.value.code in (401, 403)
    with pytest.raises(urllib.error.HTTPError) as bad:
        await asyncio.to_thread(_publish_over_http, server.http_url, admin_token, "nosuch:X", {})
    assert bad.value.code == 400
    assert "unknown channel namespace" in json.loads(bad.value.read())["detail"]
