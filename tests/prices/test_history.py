"""Minute candles: in-memory bars, periodic flush, final write at the minute's end, merge on restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from prices.aggregation import AggregatedPrice
from prices.models import Candle, Symbol
from prices.services.history import CandleBook

pytestmark = pytest.mark.django_db

T = datetime(2026, 11, 25, 12, 0, 5, tzinfo=UTC)


def p(price: float, *, stale: bool = False) -> AggregatedPrice:
    return AggregatedPrice("BTC", price, 0, ("a",), volume24h=5.0, stale=stale)


def closes() -> list[tuple[int, float, float, float, float, int]]:
    return [
        (c.start.minute, float(c.open), float(c.high), float(c.low), float(c.close), c.samples)
        for c in Candle.objects.order_by("start")
    ]


def test_flush_interval_minute_end_and_restart_merge() -> None:
    ids = {"BTC": Symbol.objects.get(symbol="BTC").pk}
    book = CandleBook(flush_seconds=10)
    assert book.record([p(100.0)], symbol_ids=ids, now=T) == 1  # first tick writes
    assert book.record([p(105.0)], symbol_ids=ids, now=T + timedelta(seconds=2)) == 0  # buffered
    assert book.record([p(95.0, stale=True)], symbol_ids=ids, now=T + timedelta(seconds=4)) == 0  # stale: ignored
    assert book.record([p(98.0)], symbol_ids=ids, now=T + timedelta(seconds=11)) == 1
    assert closes() == [(0, 100.0, 105.0, 98.0, 98.0, 3)]
    book.record([p(97.0)], symbol_ids=ids, now=T + timedelta(seconds=13))
    # The next minute: the finished bar is written with its final state, the new one opens.
    assert book.record([p(99.0)], symbol_ids=ids, now=T + timedelta(seconds=60)) == 2
    assert closes() == [(0, 100.0, 105.0, 97.0, 97.0, 4), (1, 99.0, 99.0, 99.0, 99.0, 1)]
    # A restarted worker merges the minute in progress instead of resetting its open/high.
    fresh = CandleBook(flush_seconds=10)
    fresh.record([p(101.0)], symbol_ids=ids, now=T + timedelta(seconds=62))
    assert closes()[-1] == (1, 99.0, 101.0, 99.0, 101.0, 2)


def test_bulk_upsert_inserts_updates_and_matches_the_orm() -> None:
    """One statement; the last row of a repeated key wins; values read back as the ORM stores them."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from prices.models import LatestPrice
    from realtime_project.bulk import bulk_upsert

    btc, eth = Symbol.objects.get(symbol="BTC"), Symbol.objects.get(symbol="ETH")
    LatestPrice.objects.create(symbol=eth, price=1.0, payload={"old": True}, published_at=T)
    fields = ("symbol_id", "price", "payload", "published_at")
    update = ("price", "payload", "published_at")
    later = T + timedelta(seconds=2)
    rows = [
        (btc.pk, 97012.123456789, {"symbol": "BTC", "twap": None, "sources": ["a", "b"]}, T),
        (eth.pk, 3500.5, {"symbol": "ETH"}, later),
        (btc.pk, 97013.5, {"symbol": "BTC", "sources": ["a"]}, later),  # the same key again: wins
    ]
    with CaptureQueriesContext(connection) as ctx:
        assert bulk_upsert(LatestPrice, rows, fields=fields, unique_fields=("symbol_id",), update_fields=update) == 2
    assert len(ctx.captured_queries) == 1
    got = {row.symbol_id: row for row in LatestPrice.objects.all()}
    assert got[btc.pk].payload == {"symbol": "BTC", "sources": ["a"]} and float(got[btc.pk].price) == 97013.5
    assert got[btc.pk].published_at == later and got[eth.pk].payload == {"symbol": "ETH"}
    # The ORM's own upsert of the same values reads back identically.
    orm = LatestPrice(symbol=eth, price=3500.5, payload={"symbol": "ETH"}, published_at=later)
    before = (got[eth.pk].price, got[eth.pk].payload, got[eth.pk].published_at)
    LatestPrice.objects.bulk_create(
        [orm], update_conflicts=True, unique_fields=["symbol"], update_fields=["price", "payload", "published_at"]
    )
    again = LatestPrice.objects.get(symbol=eth)
    assert (again.price, again.payload, again.published_at) == before
    assert bulk_upsert(LatestPrice, [], fields=fields, unique_fields=("symbol_id",), update_fields=update) == 0
