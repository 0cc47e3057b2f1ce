"""Channels: live batches and per-symbol updates, and snapshots rebuilt from the database."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async

from prices.services.overview import market_overview_refresh
from prices.services.tick import TICKER, PriceTicker, prices_tick
from realtime_project import runtime as project_runtime
from tests.support.ws import Client

# The flush after a transactional test drops the seeded symbols: re-seed them.
pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def simulated(settings: Any) -> None:
    settings.PRICES = {"SIMULATED": True, "LIVE_SOURCES": False, "MIN_SOURCES": 1}
    TICKER.set(PriceTicker())


async def subscribe(client: Client, channel: str, rid: int) -> dict[str, Any]:
    reply = await client.request({"type": "subscribe", "id": rid, "channel": channel})
    assert reply["type"] == "subscribed", reply
    return reply


async def test_tick_publishes_each_symbol_and_one_batch(simulated: None) -> None:
    client = Client()
    assert await client.connect()
    await subscribe(client, "prices:btc", 1)
    await subscribe(client, "prices", 2)
    report = await asyncio.to_thread(prices_tick)
    frames = [await client.recv(), await client.recv()]
    by_channel = {f["channel"]: f for f in frames}
    btc = by_channel["prices:BTC"]["data"]
    assert btc["symbol"] == "BTC" and btc["source"] == "simulated" and btc["sources"] == ["simulated"]
    batch = by_channel["prices"]["data"]
    assert batch == report.batch and len(batch["updates"]) == 11
    assert next(u for u in batch["updates"] if u["symbol"] == "BTC") == btc
    assert await client.nothing()  # exactly one batch per tick
    await client.close()


async def test_new_subscriber_gets_the_latest_from_the_database_when_history_is_empty(simulated: None) -> None:
    report = await asyncio.to_thread(prices_tick)
    assert report.batch is not None
    await database_sync_to_async(market_overview_refresh)()
    project_runtime.reset()  # history lost (a restarted embedded server, a flushed Redis)
    client = Client()
    assert await client.connect()
    await subscribe(client, "prices:ETH", 1)
    snap = await client.recv()
    assert snap["snapshot"] is True and snap["data"]["symbol"] == "ETH"
    eth = next(u for u in report.batch["updates"] if u["symbol"] == "ETH")
    assert snap["data"] == eth
    await subscribe(client, "prices", 2)
    batch = (await client.recv())["data"]
    assert [u["symbol"] for u in batch["updates"]] == sorted(u["symbol"] for u in report.batch["updates"])
    await subscribe(client, "market:overview", 3)
    overview = await client.recv()
    assert overview["snapshot"] is True and overview["data"]["source"] == "simulated"
    await subscribe(client, "prices:NOPE", 4)
    assert await client.nothing()  # no price, no snapshot
    await client.close()
