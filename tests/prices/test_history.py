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
