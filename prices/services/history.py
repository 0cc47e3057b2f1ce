"""Persisted prices: the latest PriceUpdate per symbol and 1-minute candles, with pruning."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from realtime_project.bulk import bulk_upsert

from ..aggregation import AggregatedPrice
from ..models import Candle, LatestPrice
from ..payloads import PriceUpdate


@dataclass(slots=True)
class _Bar:
    start: datetime
    open: float
    high: float
    low: float
    close: float
    volume24h: float | None
    samples: int


#: Bars in progress are written at least this often (and always when their minute ends):
#: writing 500 rows every 2 s tick was most of the tick's database time.
FLUSH_SECONDS = 10.0

#: A candle row as `CandleBook.write` upserts it (the `CANDLE_FIELDS` columns).
CandleRow = tuple[int, datetime, float, float, float, float, float | None, int]
CANDLE_FIELDS = ("symbol_id", "start", "open", "high", "low", "close", "volume24h", "samples")


class CandleBook:
    """The current minute's bar per symbol, in memory, flushed by bulk upserts.

    A bar is written when its minute is over and at least every FLUSH_SECONDS while it
    is open, so a crash loses at most that much of a minute's high/low, and
    `price_at` for the current minute lags by at most that much. A process that starts
    mid-minute merges the bar already in the database first, so a restart or a second
    worker never resets a minute's open/high/low.
    """

    def __init__(self, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.flush_seconds = flush_seconds
        self._bars: dict[str, _Bar] = {}
        self._dirty: set[str] = set()
        self._flushed_at: datetime | None = None
        self._lock = threading.Lock()

    def record(self, prices: Iterable[AggregatedPrice], *, symbol_ids: dict[str, int], now: datetime) -> int:
        """Add this tick's prices and write what is due; returns how many rows were written."""
        return self.write(self.prepare(prices, symbol_ids=symbol_ids, now=now))

    def prepare(
        self, prices: Iterable[AggregatedPrice], *, symbol_ids: dict[str, int], now: datetime
    ) -> list[CandleRow]:
        """Add this tick's prices (reads the database on a cold start); returns the rows due."""
        start = now.replace(second=0, microsecond=0)
        fresh = [p for p in prices if not p.stale and p.symbol in symbol_ids]
        with self._lock:
            finished: list[CandleRow] = []
            missing = [p.symbol for p in fresh if (bar := self._bars.get(p.symbol)) is None or bar.start != start]
            if missing:
                self._load(missing, symbol_ids, start)
            for p in fresh:
                bar = self._bars.get(p.symbol)
                if bar is None or bar.start != start:
                    if bar is not None and p.symbol in self._dirty:
                        finished.append(self._row(bar, symbol_ids[p.symbol]))  # its final state
                    bar = self._bars[p.symbol] = _Bar(start, p.price, p.price, p.price, p.price, p.volume24h, 0)
                if p.price > bar.high:
                    bar.high = p.price
                elif p.price < bar.low:
                    bar.low = p.price
                bar.close = p.price
                if p.volume24h is not None:
                    bar.volume24h = p.volume24h
                bar.samples += 1
                self._dirty.add(p.symbol)
            due = (
                self._flushed_at is None
                or (now - self._flushed_at).total_seconds() >= self.flush_seconds
                or self._flushed_at.replace(second=0, microsecond=0) != start
            )
            rows = finished
            if due:
                rows += [self._row(self._bars[s], symbol_ids[s]) for s in self._dirty if s in symbol_ids]
                self._dirty.clear()
                self._flushed_at = now
        return rows

    @staticmethod
    def write(rows: list[CandleRow]) -> int:
        """Upsert prepared rows in one statement (writes only: safe at the start of a transaction)."""
        return bulk_upsert(
            Candle,
            rows,
            fields=CANDLE_FIELDS,
            unique_fields=("symbol_id", "start"),
            update_fields=("high", "low", "close", "volume24h", "samples"),
        )

    @staticmethod
    def _row(bar: _Bar, symbol_id: int) -> CandleRow:
        return (symbol_id, bar.start, bar.open, bar.high, bar.low, bar.close, bar.volume24h, bar.samples)

    def _load(self, symbols: list[str], symbol_ids: dict[str, int], start: datetime) -> None:
        by_id = {symbol_ids[s]: s for s in symbols}
        for row in Candle.objects.filter(symbol_id__in=by_id, start=start):
            self._bars[by_id[row.symbol_id]] = _Bar(
                start, float(row.open), float(row.high), float(row.low), float(row.close), row.volume24h, row.samples
            )

    def clear(self) -> None:
        with self._lock:
            self._bars.clear()
            self._dirty.clear()
            self._flushed_at = None


def latest_prices_save(*, updates: list[PriceUpdate], symbol_ids: dict[str, int], now: datetime) -> int:
    """Upsert the published PriceUpdates (what snapshots, REST and other apps read), one statement."""
    rows = [(symbol_id, u["price"], u, now) for u in updates if (symbol_id := symbol_ids.get(u["symbol"])) is not None]
    return bulk_upsert(
        LatestPrice,
        rows,
        fields=("symbol_id", "price", "payload", "published_at"),
        unique_fields=("symbol_id",),
        update_fields=("price", "payload", "published_at"),
    )


def candles_prune(*, retention_days: int, now: datetime | None = None) -> int:
    """Delete candles older than the retention; returns how many."""
    now = now or datetime.now(UTC)
    deleted, _ = Candle.objects.filter(start__lt=now - timedelta(days=retention_days)).delete()
    return deleted
