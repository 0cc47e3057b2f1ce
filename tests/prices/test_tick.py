"""The tick against the local fakes: aggregate, persist, change-driven batches, health, bad input."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from prices.models import Candle, LatestPrice, Source, Symbol, SymbolMapping
from prices.services.sources import source_set_enabled
from prices.services.tick import TICKER, PriceTicker
from tests.support.clock import FakeClock

from .fakes import Asset, FakeExchanges, Fault
from .streamkit import Published

pytestmark = pytest.mark.django_db

ALL = ["binance", "coinbase", "coingecko", "kraken"]


@pytest.fixture
def clock() -> FakeClock:
    """Real time plus what the test advances (quotes from the fakes carry real time)."""
    return FakeClock(wall=time.time)


@pytest.fixture
def ticker(live_prices: Any, clock: FakeClock) -> PriceTicker:
    Source.objects.update(poll_interval=0)
    Source.objects.filter(slug="coinbase").update(max_requests=40)  # every seeded product each tick
    Source.objects.filter(slug="okx").update(enabled=False)  # the four sources these cases were written for
    t = PriceTicker(clock=clock)
    TICKER.set(t)
    return t


@pytest.fixture
def batches() -> Iterator[Published]:
    with Published.capture("test.tick") as got:
        yield got


def market(exchanges: FakeExchanges) -> None:
    exchanges.set_price("BTC", 100_000.0, change=2.0, volume=10.0)
    exchanges.set_price("ETH", 3_500.0, change=-1.0, volume=100.0)
    exchanges.set_price("SOL", 240.0)
    exchanges.set_price("BNB", 650.0)
    exchanges.market.kraken["XXBTZUSD"].price = 100_040.0
    exchanges.market.coinbase["BTC-USD"].price = 100_020.0


def test_tick_aggregates_persists_and_publishes_one_batch(
    exchanges: FakeExchanges, ticker: PriceTicker, batches: Published
) -> None:
    market(exchanges)
    report = ticker.tick()
    assert sorted(report.polled) == ALL and report.failed == {}
    assert len(batches) == 1
    batch = batches[0]
    by_symbol = {u["symbol"]: u for u in batch["updates"]}
    assert set(by_symbol) == {"BTC", "ETH", "SOL", "BNB"}
    btc = by_symbol["BTC"]
    # median(100000 binance, 100000 coingecko, 100020 coinbase, 100040 kraken) = 100010
    assert btc["price"] == 100_010.0 and btc["sources"] == ALL
    assert btc["source"] == "aggregate" and not btc["stale"] and not btc["degraded"]
    assert btc["change24h"] == pytest.approx(2.0, rel=1e-3)  # kraken reports none
    assert by_symbol["BNB"]["sources"] == ["binance", "coingecko"]  # not listed on Coinbase/Kraken
    assert batch["timestamp"] == btc["timestamp"]
    # Symbols no source quotes are not published and are reported.
    assert "ADA" in report.unpriced and "ADA" not in by_symbol
    assert LatestPrice.objects.get(symbol__symbol="BTC").payload == btc
    candle = Candle.objects.get(symbol__symbol="BTC")
    assert float(candle.open) == float(candle.close) == 100_010.0 and candle.samples == 1
    health = Source.objects.get(slug="binance")
    assert health.last_success_at is not None and health.consecutive_failures == 0
    assert health.quotes_accepted == 4 and health.total_polls == 1
    # The seeded pairs the fake does not list (ADA, AVAX, DOGE, DOT, LINK, LTC, XRP) were
    # isolated by bisection and counted once each.
    assert health.problems["unknown_symbol"] == 7


def test_change_driven_deviation_and_heartbeat(
    exchanges: FakeExchanges, ticker: PriceTicker, clock: FakeClock, batches: Published, settings: Any
) -> None:
    settings.PRICES = {**settings.PRICES, "DEVIATION_BPS": 5, "HEARTBEAT": 60}
    market(exchanges)
    ticker.tick()
    assert len(batches) == 1
    assert ticker.tick().batch is None and len(batches) == 1  # nothing moved: nothing sent
    for source in ("binance", "coingecko", "coinbase", "kraken"):
        getattr(exchanges.market, source)[
            {"binance": "BTCUSDT", "coingecko": "bitcoin", "coinbase": "BTC-USD", "kraken": "XXBTZUSD"}[source]
        ].price *= 1.0004  # 4 bps: under the threshold
    assert ticker.tick().published == []
    for asset in (exchanges.market.binance["ETHUSDT"], exchanges.market.coingecko["ethereum"]):
        asset.price *= 1.01  # ETH's median moves 50 bps
    report = ticker.tick()
    assert report.published == ["ETH"] and [u["symbol"] for u in batches[-1]["updates"]] == ["ETH"]
    clock.advance(61)
    report = ticker.tick()
    assert sorted(report.published) == ["BNB", "BTC", "ETH", "SOL"]  # heartbeat


def test_rate_limited_source_backs_off_and_is_skipped(exchanges: FakeExchanges, ticker: PriceTicker) -> None:
    market(exchanges)
    ticker.tick()
    exchanges.fault(
        "/binance/",
        Fault(status=429, body=b'{"code":-1003,"msg":"Too many requests."}', headers={"Retry-After": "120"}),
    )
    report = ticker.tick()
    assert report.failed == {"binance": "rate_limited"}
    row = Source.objects.get(slug="binance")
    assert row.consecutive_failures == 1 and row.last_error == "rate_limited" and row.total_failures == 1
    assert (row.backoff_until - row.last_error_at).total_seconds() == 120  # Retry-After, not 2 s
    hits = exchanges.hits("/binance/")
    report = ticker.tick()
    assert report.skipped["binance"] == "backoff" and exchanges.hits("/binance/") == hits
    assert ticker.aggregator is not None
    assert "binance" in ticker.aggregator.get_price("BTC").sources  # its fresh quote still counts until stale


def test_451_blocks_the_host_for_a_day_and_5xx_backs_off_exponentially(
    exchanges: FakeExchanges, ticker: PriceTicker, clock: FakeClock
) -> None:
    market(exchanges)
    exchanges.fault("/kraken/", Fault(status=451, body=b'{"code":0,"msg":"restricted location"}'))
    exchanges.fault("/coinbase/", Fault(status=502, body=b"<html>Bad gateway</html>"))
    ticker.tick()
    kraken = Source.objects.get(slug="kraken")
    assert kraken.last_error == "blocked"
    assert (kraken.backoff_until - kraken.last_error_at).total_seconds() == 86_400  # PERMANENT_BACKOFF
    coinbase = Source.objects.get(slug="coinbase")
    assert coinbase.last_error == "http_502"
    assert (coinbase.backoff_until - coinbase.last_error_at).total_seconds() == 2  # BACKOFF_BASE
    clock.advance(3)
    ticker.tick()
    coinbase.refresh_from_db()
    assert coinbase.consecutive_failures == 2
    assert (coinbase.backoff_until - coinbase.last_error_at).total_seconds() == 4
    assert Source.objects.get(slug="kraken").consecutive_failures == 1  # skipped, not hammered


def test_disabling_a_source_takes_effect_next_tick(exchanges: FakeExchanges, ticker: PriceTicker) -> None:
    market(exchanges)
    ticker.tick()
    source_set_enabled(slug="kraken", enabled=False)
    hits = exchanges.hits("/kraken/")
    exchanges.market.binance["BTCUSDT"].price = 101_000.0  # move BTC so it is republished
    exchanges.market.coingecko["bitcoin"].price = 101_000.0
    report = ticker.tick()
    assert "kraken" not in report.polled and exchanges.hits("/kraken/") == hits
    btc = LatestPrice.objects.get(symbol__symbol="BTC").payload
    assert btc["sources"] == ["binance", "coinbase", "coingecko"]  # its quotes left at once
    source_set_enabled(slug="kraken", enabled=True)
    assert "kraken" in ticker.tick().polled


def test_bad_input_never_crashes_or_poisons_and_is_counted(
    exchanges: FakeExchanges, ticker: PriceTicker, batches: Published
) -> None:
    market(exchanges)
    future = int(time.time()) + 3600
    gecko = {
        "bitcoin": {"usd": 1e15, "last_updated_at": int(time.time())},  # huge
        "ethereum": {"usd": 3500.0, "last_updated_at": future},  # from the future
        "solana": {"usd": -5, "last_updated_at": int(time.time())},  # negative
        "binancecoin": {"usd": 0, "last_updated_at": int(time.time())},  # zero
        "shiba-inu": {"usd": 0.3, "last_updated_at": int(time.time())},  # not asked for
    }
    exchanges.fault("/coingecko/simple/price", Fault(body=json.dumps(gecko).encode()))
    rows = [
        {"symbol": "BTCUSDT", "lastPrice": "NaN", "priceChangePercent": "x", "closeTime": int(time.time() * 1000)},
        {"symbol": "ETHUSDT", "lastPrice": "3500.2", "closeTime": "soon"},
        {"symbol": "SOLUSDT", "lastPrice": "240", "closeTime": int(time.time() * 1000)},
    ]
    exchanges.fault("/binance/api/v3/ticker", Fault(body=json.dumps(rows).encode()))
    exchanges.fault("/kraken/", Fault(body=b'{"error": [], "result": {"XXBTZUSD": {"c": ["garbage"]'))  # truncated
    report = ticker.tick()
    assert report.failed == {"kraken": "malformed_json"}
    by_symbol = {u["symbol"]: u for u in batches[0]["updates"]}
    assert by_symbol["BTC"]["price"] == 100_020.0 and by_symbol["BTC"]["sources"] == ["coinbase"]
    assert by_symbol["ETH"]["sources"] == ["coinbase"] and by_symbol["ETH"]["price"] == 3_500.0
    gecko_row = Source.objects.get(slug="coingecko")
    assert gecko_row.problems["invalid_price"] == 3 and gecko_row.problems["future_timestamp"] == 1
    assert gecko_row.problems["unexpected_symbol"] == 1
    binance_row = Source.objects.get(slug="binance")
    assert binance_row.problems["invalid_price"] == 1 and binance_row.problems["malformed"] == 1
    assert Source.objects.get(slug="kraken").last_error == "malformed_json"


def test_outlier_is_counted_against_its_source(exchanges: FakeExchanges, ticker: PriceTicker) -> None:
    market(exchanges)
    exchanges.market.kraken["XXBTZUSD"].price = 130_000.0
    ticker.tick()
    btc = LatestPrice.objects.get(symbol__symbol="BTC").payload
    assert btc["sources"] == ["binance", "coinbase", "coingecko"] and btc["price"] == 100_000.0
    assert Source.objects.get(slug="kraken").outliers == 1


def test_symbol_unknown_to_every_source(exchanges: FakeExchanges, ticker: PriceTicker) -> None:
    market(exchanges)
    Symbol.objects.create(symbol="ZZZ", name="Nobody lists it")
    report = ticker.tick()
    assert "ZZZ" in report.unpriced and not LatestPrice.objects.filter(symbol__symbol="ZZZ").exists()


def test_all_sources_down_publishes_the_last_price_as_stale(
    exchanges: FakeExchanges, ticker: PriceTicker, clock: FakeClock, batches: Published
) -> None:
    market(exchanges)
    ticker.tick()
    for prefix in ("/binance/", "/coinbase/", "/coingecko/", "/kraken/"):
        exchanges.fault(prefix, Fault(status=503, body=b""))
    clock.advance(121)
    report = ticker.tick()
    assert set(report.failed) == set(ALL)
    btc = next(u for u in batches[-1]["updates"] if u["symbol"] == "BTC")
    assert btc["stale"] and btc["degraded"] and btc["sources"] == [] and btc["price"] == 100_010.0


def test_a_failing_subscriber_never_breaks_the_tick(
    exchanges: FakeExchanges, ticker: PriceTicker, batches: Published, caplog: pytest.LogCaptureFixture
) -> None:
    from prices.events import PricesPublished
    from realtime_project.events import bus

    def broken(event: PricesPublished) -> None:
        raise RuntimeError("subscriber bug")

    sub = bus.subscribe(PricesPublished, broken, name="test.broken")
    try:
        market(exchanges)
        with caplog.at_level(logging.ERROR, logger="realtime.events"):
            report = ticker.tick()
            assert sub.drain()
    finally:
        bus.unsubscribe(sub)
    assert report.published and len(batches) == 1  # the tick published; the other subscriber got it
    assert sub.failed == 1 and "subscriber bug" in caplog.text


def test_cold_start_resumes_from_the_database(exchanges: FakeExchanges, ticker: PriceTicker, clock: FakeClock) -> None:
    market(exchanges)
    ticker.tick()
    fresh = PriceTicker(clock=clock)  # a restarted worker
    assert fresh.tick().published == []  # the change filter was warmed: nothing moved
    exchanges.market.binance["BTCUSDT"].price = 101_000.0
    exchanges.market.coingecko["bitcoin"].price = 101_000.0
    assert fresh.tick().published == ["BTC"]


def test_not_due_sources_wait_for_their_interval(exchanges: FakeExchanges, ticker: PriceTicker) -> None:
    market(exchanges)
    Source.objects.filter(slug="coingecko").update(poll_interval=30)
    ticker.tick()
    report = ticker.tick()
    assert report.skipped["coingecko"] == "not_due" and "binance" in report.polled


def _move_every_price(exchanges: FakeExchanges, factor: float) -> None:
    for book in (exchanges.market.binance, exchanges.market.coingecko, exchanges.market.kraken):
        for asset in book.values():
            asset.price *= factor
            asset.updated = time.time()


def test_queries_per_tick_are_bounded_by_sources_not_symbols(exchanges: FakeExchanges, ticker: PriceTicker) -> None:
    """Reads and writes are a fixed number of statements (bulk upserts): 150 more symbols,
    all published and their candles written, cost no extra query (an ORM bulk_create
    splits 150 candles into two INSERTs on SQLite)."""
    market(exchanges)
    ticker.candles.flush_seconds = 0  # candles written every tick, on both sides
    ticker.tick()  # cold start: warm-up reads, unknown ids isolated by bisection

    def queries() -> tuple[int, int]:
        _move_every_price(exchanges, 1.01)  # every symbol is published
        with CaptureQueriesContext(connection) as ctx:
            report = ticker.tick()
        assert report.failed == {}
        return len(ctx.captured_queries), len(report.published)

    few, published_few = queries()
    sources = {row.slug: row for row in Source.objects.all()}
    added = Symbol.objects.bulk_create([Symbol(symbol=f"X{i:03d}") for i in range(150)])
    mappings = []
    for i, symbol in enumerate(added):
        for kind, external in (("binance", f"X{i:03d}USDT"), ("coingecko", f"x-{i}"), ("kraken", f"X{i:03d}USD")):
            getattr(exchanges.market, kind)[external] = Asset(10.0 + i)
            mappings.append(SymbolMapping(symbol=symbol, source=sources[kind], external_id=external))
    SymbolMapping.objects.bulk_create(mappings)
    ticker.tick()  # the new symbols' first prices and candles
    many, published_many = queries()
    assert published_many == published_few + 150
    assert many == few
    assert Candle.objects.filter(symbol__symbol__startswith="X").count() == 150
    assert LatestPrice.objects.get(symbol__symbol="X007").payload["sources"] == ["binance", "coingecko", "kraken"]


def test_persisted_rows_match_the_published_updates(
    exchanges: FakeExchanges, ticker: PriceTicker, batches: Published
) -> None:
    """The bulk upserts store what the ORM would: the payload as published, the price as a
    Decimal of the float, one candle per symbol and minute, updated in place."""
    market(exchanges)
    ticker.candles.flush_seconds = 0
    ticker.tick()
    _move_every_price(exchanges, 1.02)
    ticker.tick()
    for update in batches[-1]["updates"]:
        row = LatestPrice.objects.get(symbol__symbol=update["symbol"])
        assert row.payload == update
        assert float(row.price) == pytest.approx(update["price"], rel=1e-12)
    published_btc = next(u for u in batches[-1]["updates"] if u["symbol"] == "BTC")
    btc = Candle.objects.filter(symbol__symbol="BTC").order_by("-start").first()
    assert btc is not None and btc.samples >= 1 and float(btc.close) == published_btc["price"] == 102_000.0


@pytest.mark.django_db(transaction=True)
def test_a_slow_alert_evaluation_never_delays_the_tick(
    exchanges: FakeExchanges, ticker: PriceTicker, batches: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The alerts engine evaluates a publication on the bus's thread: while its history
    read hangs, ticks go on publishing (the tick's lock is not held), and the rule fires
    once the read answers."""
    import threading
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from alerts import engine as engine_module
    from alerts.readers import PricesAppReader
    from alerts.subscriptions import SUBSCRIPTION
    from notifications.models import Notification
    from prices.events import PricesPublished
    from realtime_project.events import bus

    class HangingHistory(PricesAppReader):
        """The prices app's history, behind a query that answers only when released."""

        def __init__(self) -> None:
            self.asked = threading.Event()
            self.release = threading.Event()

        def price_at(self, symbol: str, when: Any) -> Any:
            self.asked.set()
            assert self.release.wait(10), "never released"
            return super().price_at(symbol, when)

    history = HangingHistory()
    engine_module.ENGINE.set(engine_module.AlertEngine(prices=history))
    [evaluation] = [s for s in bus.subscriptions(PricesPublished) if s.name == SUBSCRIPTION]
    user = get_user_model().objects.create_user("slow-alerts", password=None)
    btc = Symbol.objects.get(symbol="BTC")
    an_hour_ago = (timezone.now() - timedelta(hours=1)).replace(second=0, microsecond=0)
    Candle.objects.create(symbol=btc, start=an_hour_ago, open=90_000, high=90_000, low=90_000, close=90_000)
    engine_module.get_engine().register_alert(
        user_id=user.pk, kind="percent_move", symbol="BTC", threshold="5", direction="up", window=3600
    )
    try:
        market(exchanges)
        first = ticker.tick()
        assert history.asked.wait(10), "the evaluation never started"  # and now hangs on its read
        for symbol, price in {"BTC": 101_000.0, "ETH": 3_600.0}.items():
            exchanges.set_price(symbol, price)
        second = ticker.tick()  # the tick's lock is free; the publisher never waits
        assert first.published and second.published and len(batches) == 2
        assert not Notification.objects.filter(user=user).exists()
    finally:
        history.release.set()
    assert evaluation.drain(10)
    [alert] = Notification.objects.filter(user=user, type="price_alert")
    assert alert.data["change_percent"] > 5
