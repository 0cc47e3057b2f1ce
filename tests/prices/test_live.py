"""Event-driven aggregation: a quote re-aggregates its symbol, changes coalesce into one
publication per window (leading edge), other apps hear of it after it went out, a venue
that goes silent stops counting at once, an outlier venue is flagged and left out."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from prices.conf import prices_settings
from prices.events import PricesPublished
from prices.live import LivePrices
from prices.streams.events import Tick, TradeEvent
from tests.support.clock import FakeClock

from .streamkit import until

SOURCES = ["binance", "coinbase", "kraken", "okx"]


class Recorder:
    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []

    async def publish(self, updates: list[dict[str, Any]], timestamp: int) -> None:
        self.log.append(("published", [dict(u) for u in updates]))

    def emit(self, event: PricesPublished) -> None:
        self.log.append(("emitted", event))

    def publications(self) -> list[list[dict[str, Any]]]:
        return [entry for kind, entry in self.log if kind == "published"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(wall=time.time())


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def live(settings: Any, clock: FakeClock, recorder: Recorder) -> LivePrices:
    settings.PRICES = {"MIN_SOURCES": 2, "COALESCE_WINDOW": 0.05, "DEVIATION_BPS": 1.0}
    prices = LivePrices(
        conf=prices_settings(),
        symbol_ids={"BTC": 1, "ETH": 2, "SOL": 3},
        publish=recorder.publish,
        emit=recorder.emit,
        clock=clock,
        persist=False,
    )
    for source in SOURCES:
        prices.add_source(source)
    return prices


def tick(live: LivePrices, clock: FakeClock, source: str, symbol: str, price: float) -> str | None:
    return live.on_tick(source, symbol, Tick(f"{symbol}-X", price, int(clock.time() * 1000) - 5, 1.0, 10.0))


async def test_changes_within_the_window_go_out_in_one_publication_first_one_at_once(
    live: LivePrices, clock: FakeClock, recorder: Recorder
) -> None:
    task = asyncio.create_task(live.run())
    try:
        tick(live, clock, "binance", "BTC", 100.0)
        tick(live, clock, "coinbase", "BTC", 100.0)
        # Leading edge: the first change after a quiet spell is published without waiting.
        await until(lambda: len(recorder.publications()) == 1, "the first publication")
        for source, symbol, price in [("binance", "BTC", 101.0), ("coinbase", "BTC", 101.0), ("okx", "ETH", 10.0),
                                      ("kraken", "ETH", 10.0), ("binance", "SOL", 5.0), ("okx", "SOL", 5.0),
                                      ("binance", "BTC", 101.5)]:  # fmt: skip
            tick(live, clock, source, symbol, price)
        stamp = int(clock.time() * 1000) - 5
        await asyncio.sleep(0.01)
        assert len(recorder.publications()) == 1  # the rest waits for the window
        await clock.run_for(0.05)
        await until(lambda: len(recorder.publications()) == 2, "one coalesced publication")
        second = recorder.publications()[1]
        assert [u["symbol"] for u in second] == ["BTC", "ETH", "SOL"]  # one update per symbol
        assert {u["symbol"]: u["price"] for u in second} == {"BTC": 101.25, "ETH": 10.0, "SOL": 5.0}
        assert all(u["quoted_at"] == stamp for u in second)  # the venues' own time
        # Other apps hear of each publication after it went out, with the same updates.
        kinds = [kind for kind, _ in recorder.log]
        assert kinds == ["published", "emitted", "published", "emitted"]
        event = recorder.log[3][1]
        assert isinstance(event, PricesPublished) and list(event.updates) == second
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_an_unchanged_price_is_not_published_again(
    live: LivePrices, clock: FakeClock, recorder: Recorder
) -> None:
    tick(live, clock, "binance", "BTC", 100.0)
    tick(live, clock, "coinbase", "BTC", 100.0)
    assert len(await live.flush()) == 1
    tick(live, clock, "binance", "BTC", 100.0)
    assert await live.flush() == []  # below DEVIATION_BPS and no heartbeat due
    tick(live, clock, "binance", "BTC", 100.2)  # 10 bp on one of two sources: the median moves 10 bp
    [update] = await live.flush()
    assert update["price"] == pytest.approx(100.1)


async def test_a_venue_five_percent_off_is_an_outlier_flagged_and_left_out(live: LivePrices, clock: FakeClock) -> None:
    for source in ("binance", "coinbase", "okx"):
        tick(live, clock, source, "BTC", 100.0)
    tick(live, clock, "kraken", "BTC", 105.0)
    [update] = await live.flush()
    assert update["price"] == 100.0 and update["sources"] == ["binance", "coinbase", "okx"]
    assert not update["degraded"]
    assert live.outliers() == {"kraken": 1}  # counted against the source (its health)


async def test_a_silent_venue_stops_counting_at_once_and_all_down_goes_stale(
    live: LivePrices, clock: FakeClock
) -> None:
    for source in SOURCES:
        tick(live, clock, source, "BTC", 100.0)
    await live.flush()
    live.sweep({source: {"BTC"} for source in SOURCES})
    assert await live.flush() == []  # all live: nothing changed
    live.sweep({"binance": {"BTC"}, "coinbase": set(), "kraken": set(), "okx": set()})
    [update] = await live.flush()
    assert update["degraded"] and not update["stale"] and update["sources"] == ["binance"]
    live.sweep({source: set() for source in SOURCES})
    [update] = await live.flush()
    assert update["stale"] and update["degraded"] and update["sources"] == [] and update["price"] == 100.0


async def test_live_venues_keep_quiet_quotes_fresh(live: LivePrices, clock: FakeClock) -> None:
    tick(live, clock, "coinbase", "ETH", 10.0)
    tick(live, clock, "kraken", "ETH", 10.0)
    await live.flush()
    for _ in range(10):  # 10 minutes without a ticker (a quiet product), the streams alive
        await clock.run_for(60)
        live.sweep({"coinbase": {"ETH"}, "kraken": {"ETH"}})
    price = live.aggregator.aggregate(live.symbol_ids, now=clock.time())["ETH"]
    assert not price.stale and price.sources == ("coinbase", "kraken")


async def test_bad_ticks_are_rejected_and_counted_per_source(live: LivePrices, clock: FakeClock) -> None:
    now_ms = int(clock.time() * 1000)
    assert live.on_tick("okx", "BTC", Tick("BTC-USDT", -1.0, now_ms)) == "invalid_price"
    assert live.on_tick("okx", "BTC", Tick("BTC-USDT", 0.0, now_ms)) == "invalid_price"
    assert live.on_tick("okx", "BTC", Tick("BTC-USDT", float("nan"), now_ms)) == "invalid_price"
    assert live.on_tick("okx", "BTC", Tick("BTC-USDT", 1.0, now_ms + 60_000)) == "future_timestamp"
    assert live.on_tick("okx", "BTC", Tick("BTC-USDT", 1.0, 946_684_800_000)) == "old_timestamp"  # year 2000
    assert live.on_tick("nobody", "BTC", Tick("BTC-USDT", 1.0, now_ms)) == "unknown_source"
    assert dict(live.rejected["okx"]) == {"invalid_price": 3, "future_timestamp": 1, "old_timestamp": 1}
    assert live.aggregator.get_price("BTC") is None and await live.flush() == []


def test_recent_trades_keep_the_venue_and_the_taker_side(live: LivePrices, clock: FakeClock) -> None:
    live.on_trade("coinbase", "BTC", TradeEvent("BTC-USD", 10, 100.5, 0.25, "buy", 2_000))
    live.on_trade("kraken", "ETH", TradeEvent("ETH/USD", 11, 10.5, 3.0, "sell", 3_000))
    assert live.trades.latest() == [
        {"symbol": "ETH", "venue": "kraken", "price": 10.5, "qty": 3.0, "side": "sell", "time": 3_000},
        {"symbol": "BTC", "venue": "coinbase", "price": 100.5, "qty": 0.25, "side": "buy", "time": 2_000},
    ]


def test_the_coalescing_window_is_a_named_setting_of_at_most_50_ms(settings: Any) -> None:
    settings.PRICES = {"COALESCE_WINDOW": 0.2}
    with pytest.raises(ValueError, match="COALESCE_WINDOW"):
        prices_settings()
