"""End to end: a beat tick on a real Celery worker → Redis → a real gateway → a WebSocket client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from prices.models import Source
from tests.support.celery_worker import CeleryWorker
from tests.support.ws import recv_live

from .fakes import FakeExchanges

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.e2e,
]


async def subscribe(ws: Any, channel: str) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "subscribe", "id": channel, "channel": channel}))
    reply = await recv_live(ws)
    assert reply["type"] == "subscribed", reply
    return reply


@pytest.fixture
def worker(redis_url: str, key_prefix: str) -> Iterator[CeleryWorker]:
    """A real Celery worker polling the fake exchanges (live sources, no simulation)."""
    w = CeleryWorker(
        redis_url=redis_url,
        key_prefix=key_prefix,
        name="prices-e2e",
        extra_env={"PRICES_LIVE_SOURCES": "1", "PRICES_SIMULATED": "0"},
    )
    yield w
    w.stop()
    w.assert_clean_log()


async def test_beat_tick_reaches_a_websocket_client_through_a_real_gateway(
    live_server_factory: Any,
    redis_settings: Any,
    redis_url: str,
    key_prefix: str,
    exchanges: FakeExchanges,
    worker: CeleryWorker,
) -> None:
    for kind, url in exchanges.base_urls().items():
        await asyncio.to_thread(lambda k=kind, u=url: Source.objects.filter(kind=k).update(base_url=u, poll_interval=0))
    exchanges.set_price("BTC", 97_012.5, change=1.23)
    exchanges.set_price("ETH", 3_500.0)
    gateway = live_server_factory(server="uvicorn", redis=redis_url, key_prefix=key_prefix)
    async with websockets.connect(gateway.ws_url) as ws:
        assert (await recv_live(ws))["type"] == "welcome"
        await subscribe(ws, "prices:BTC")
        await subscribe(ws, "prices")
        worker.send("prices.tasks.tick")  # what beat sends
        frames = [await recv_live(ws, timeout=30), await recv_live(ws)]
        by_channel = {f["channel"]: f for f in frames}
        btc = by_channel["prices:BTC"]["data"]
        assert btc["price"] == 97_012.5 and btc["sources"] == ["binance", "coinbase", "coingecko", "kraken", "okx"]
        assert btc["source"] == "aggregate" and btc["stale"] is False and btc["change24h"] == pytest.approx(1.23)
        batch = by_channel["prices"]["data"]
        assert {u["symbol"] for u in batch["updates"]} == {"BTC", "ETH"}
        assert by_channel["prices"]["seq"] == 1

    # A new subscriber immediately gets the latest batch (snapshot recovery).
    async with websockets.connect(gateway.ws_url) as late:
        assert (await recv_live(late))["type"] == "welcome"
        reply = await subscribe(late, "prices")
        snapshot = await recv_live(late)
        assert snapshot["snapshot"] is True and snapshot["seq"] == reply["seq"] == 1
        assert snapshot["data"] == batch
