"""All venues going quiet: the feed's aggregate turns degraded, then stale, within 2 of
each venue's cadences (an injected clock), and REST polling takes over.

The feed runs in-process (`PricesFeed`) against the four fake venues and the fake REST
APIs; time is the test's (`FakeClock`): the assertions are about simulated seconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from prices.feeds import PricesFeed
from prices.models import Source, Symbol
from prices.streams.registry import PROTOCOLS
from realtime_project.appsettings import reload_all
from tests.support.clock import FakeClock

from .fakes import FakeExchanges, Fault
from .streamkit import Published, until
from .venues import FakeVenue

pytestmark = [pytest.mark.django_db(transaction=True)]

BTC = {"binance": "BTCUSDT", "coinbase": "BTC-USD", "kraken": "BTC/USD", "okx": "BTC-USDT"}
#: Simulated seconds per step of the clock (the measurement's resolution).
STEP = 0.05


def modes(feed: PricesFeed) -> set[str]:
    assert feed.poller is not None
    return {h["mode"] for h in feed.poller.health().values()}


@pytest.fixture
def venues() -> Iterator[dict[str, FakeVenue]]:
    fakes = {kind: FakeVenue(kind).start() for kind in BTC}
    for kind, fake in fakes.items():
        fake.set_price(BTC[kind], 97_000.0)
    yield fakes
    for fake in fakes.values():
        fake.stop()


async def test_all_venues_quiet_goes_degraded_then_stale_within_two_cadences_and_rest_takes_over(
    settings: Any, monkeypatch: pytest.MonkeyPatch, venues: dict[str, FakeVenue], exchanges: FakeExchanges
) -> None:
    def configure() -> None:
        Symbol.objects.exclude(symbol="BTC").update(active=False)
        for kind, url in exchanges.base_urls().items():
            Source.objects.filter(kind=kind).update(base_url=url, poll_interval=1.0)
        Source.objects.filter(kind__in=["coingecko", "simulated"]).update(enabled=False)

    await asyncio.to_thread(configure)
    settings.PRICES = {"LIVE_SOURCES": True, "SIMULATED": False, "MIN_SOURCES": 2}
    monkeypatch.setenv("PRICES_STREAM_URLS", json.dumps({kind: fake.url for kind, fake in venues.items()}))
    reload_all()  # the environment is read once per process
    for kind in BTC:
        exchanges.fault(f"/{kind}", Fault(status=503, body=b""))  # REST down too, until step 3
    exchanges.set_price("BTC", 98_000.0)
    clock = FakeClock(wall=time.time())
    feed = PricesFeed(clock=clock)

    with Published.capture("test-feed-liveness") as published:

        def btc() -> dict[str, Any] | None:
            updates = [u for batch in published.items for u in batch["updates"] if u["symbol"] == "BTC"]
            return updates[-1] if updates else None

        task = asyncio.create_task(feed.run())
        try:
            # 1. Four live venues, one aggregate of the four.
            await until(lambda: all(f.subscribed() == {BTC[k]} for k, f in venues.items()), "subscribed", 30)
            await until(lambda: len(feed.streams) == 4 and all(s.live() for s in feed.streams.values()), "live")
            for kind, fake in venues.items():
                fake.tick(BTC[kind], 97_010.0)
            await clock.step_until(
                lambda: (u := btc()) and u["price"] == 97_010.0 and len(u["sources"]) == 4, "four venues", step=STEP
            )

            # 2. Every venue goes quiet without closing.
            for fake in venues.values():
                fake.silence(True)
            cadence = {kind: PROTOCOLS[kind].cadence for kind in BTC}  # Binance, Coinbase, Kraken 1 s; OKX 5 s
            took = await clock.step_until(lambda: btc()["degraded"], "degraded", step=STEP)  # type: ignore[index]
            # Three venues stop counting 2 of their cadences after their last message; OKX
            # alone is below MIN_SOURCES. (+2 steps: a heartbeat in flight lands a step late.)
            assert took <= 2 * cadence["binance"] + 2 * STEP, took
            assert btc()["sources"] == ["okx"] and not btc()["stale"]  # type: ignore[index]
            took += await clock.step_until(lambda: btc()["stale"], "stale", step=STEP)  # type: ignore[index]
            assert took <= 2 * cadence["okx"] + 2 * STEP, took
            stale = btc()
            assert stale is not None and stale["sources"] == [] and stale["price"] == 97_010.0
            assert not any(feed.health()["venues"][kind]["ok"] for kind in BTC)
            await clock.step_until(lambda: modes(feed) == {"fallback"}, "REST polling every venue", step=STEP)

            # 3. REST answers again: it takes over while the streams stay quiet.
            exchanges.clear_faults()
            await clock.step_until(
                lambda: (u := btc()) and not u["stale"] and not u["degraded"] and u["price"] == 98_000.0,
                "REST taking over",
                step=0.25,
            )
            assert len(btc()["sources"]) >= 2  # type: ignore[index]

            # 4. Each shows in source health (the rows the feed writes every 5 s).
            def rows() -> dict[str, dict[str, Any]]:
                return {s.slug: s.stream_health for s in Source.objects.filter(kind__in=BTC)}

            for _ in range(60):
                health = await asyncio.to_thread(rows)
                if all(h.get("rest") == "fallback" and h.get("ok") is False for h in health.values()):
                    break
                await clock.run_for(1.0)
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"the source rows never said so: {health}")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
