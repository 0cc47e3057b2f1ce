"""Smoke test of the consumer through Channels' WebsocketCommunicator."""

from __future__ import annotations

import pytest

from realtime_project.gateway.api import apublish
from tests.support.ws import Client

pytestmark = pytest.mark.django_db(transaction=True)


async def test_welcome_subscribe_publish_ping() -> None:
    client = Client()
    assert await client.connect()
    assert client.welcome is not None and client.welcome["protocol"] == 1
    reply = await client.request({"type": "subscribe", "id": 1, "channel": "prices:btc"})
    assert reply == {"type": "subscribed", "id": 1, "channel": "prices:BTC", "epoch": reply["epoch"], "seq": 0}
    await apublish("prices:BTC", {"price": 1.5})
    message = await client.recv()
    assert message == {
        "type": "message",
        "channel": "prices:BTC",
        "seq": 1,
        "epoch": reply["epoch"],
        "data": {"price": 1.5},
    }
    pong = await client.request({"type": "ping", "id": "p"})
    assert pong["type"] == "pong" and pong["id"] == "p"
    await client.close()
