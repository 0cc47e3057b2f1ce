"""The price tick: poll due sources concurrently, aggregate, persist, publish one batch.

State (the aggregator's quotes and TWAP samples, the change filter, the current
candles) lives in the process that runs the tick and is warmed from the database
on a cold start, so a restarted or replacement worker carries on where the last one
stopped. Route `prices.tasks.tick` to one worker (see docs/prices.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import transaction

from realtime_project.clock import SYSTEM_CLOCK, Clock
from realtime_project.events import bus
from realtime_project.runtime import Slot

from ..aggregation import AggregatedPrice, PriceAggregator
from ..change import ChangeFilter
from ..conf import PricesSettings, prices_settings
from ..events import PricesPublished
from ..models import LatestPrice, Source
from ..payloads import PriceBatch, price_update
from ..publishing import publish_prices
from ..selectors import active_symbol_ids, enabled_sources, mappings_by_source, source_config
from ..sources.base import FetchResult, PriceSource, SourceError
from ..sources.registry import get_adapter
from ..threads import thread_pool
from .history import CandleBook, latest_prices_save
from .sources import source_add_counts, source_record_poll

logger = logging.getLogger("prices.tick")

#: Threads polling sources: one per source row (five kinds), with room for more rows.
POLL_THREADS = 8


@dataclass(slots=True)
class Poll:
    slug: str
    result: FetchResult | None = None
    error: SourceError | None = None
    detail: str = ""
    seconds: float = 0.0


@dataclass(slots=True)
class TickReport:
    polled: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    quotes: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    aggregated: int = 0
    published: list[str] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)
    batch: PriceBatch | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "polled": self.polled,
            "skipped": self.skipped,
            "failed": self.failed,
            "quotes": self.quotes,
            "rejected": dict(self.rejected),
            "aggregated": self.aggregated,
            "published": len(self.published),
            "unpriced": self.unpriced,
        }


def poll_source(adapter: PriceSource, symbols: dict[str, str]) -> Poll:
    """One source's poll; never raises (an adapter bug is a failed poll, not a failed tick)."""
    started = time.perf_counter()
    poll = Poll(adapter.id)
    try:
        poll.result = adapter.fetch(symbols)
    except SourceError as exc:
        poll.error, poll.detail = exc, str(exc)
    except Exception as exc:
        logger.exception("source %s: adapter failed", adapter.id)
        poll.error, poll.detail = SourceError(type(exc).__name__, code="adapter_error"), type(exc).__name__
    poll.seconds = time.perf_counter() - started
    if poll.result is not None and symbols and not poll.result.quotes and poll.error is None:
        poll.error = SourceError("no quotes for any asked symbol", code="empty")
        poll.detail = str(poll.error)
    return poll


class PriceTicker:
    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.aggregator: PriceAggregator | None = None
        self.filter: ChangeFilter | None = None
        self.candles = CandleBook()
        self._shape: tuple[Any, ...] | None = None
        self._lock = threading.Lock()

    def _configure(self, conf: PricesSettings, symbol_ids: dict[str, int]) -> tuple[PriceAggregator, ChangeFilter]:
        shape = (conf.stale_after, conf.outlier_bound, conf.min_sources, conf.twap_window, conf.future_tolerance)
        filt_shape = (conf.deviation_bps, conf.heartbeat)
        if self.aggregator is None or self.filter is None or self._shape != (*shape, *filt_shape):
            self.aggregator = PriceAggregator(
                stale_after=conf.stale_after,
                outlier_bound=conf.outlier_bound,
                min_sources=conf.min_sources,
                twap_window=conf.twap_window,
                future_tolerance=conf.future_tolerance,
                clock=self.clock,
            )
            self.aggregator.start()
            self.filter = ChangeFilter(deviation_bps=conf.deviation_bps, heartbeat=conf.heartbeat)
            self._shape = (*shape, *filt_shape)
            self._warm(symbol_ids)
        return self.aggregator, self.filter

    def _warm(self, symbol_ids: dict[str, int]) -> None:
        """Cold start: resume from the last published prices (stale carry-over, TWAP, filter)."""
        assert self.aggregator is not None and self.filter is not None
        for row in LatestPrice.objects.filter(symbol_id__in=symbol_ids.values()).select_related("symbol"):
            try:
                seeded = _from_update(row.payload)
            except (KeyError, TypeError, ValueError):
                continue
            self.aggregator.seed(seeded)
            self.filter.mark(seeded, row.published_at.timestamp())

    def tick(self) -> TickReport:
        with self._lock:
            return self._tick()

    def _tick(self) -> TickReport:
        conf = prices_settings()
        report = TickReport()
        t0 = time.perf_counter()
        now = self.clock.time()
        now_dt = datetime.fromtimestamp(now, UTC)
        rows = enabled_sources(conf)
        due = [row for row in rows if self._due(row, now_dt, report)]
        mappings = mappings_by_source([row.slug for row in due])
        symbol_ids = active_symbol_ids()
        aggregator, filt = self._configure(conf, symbol_ids)
        self._sync_sources(aggregator, rows)
        polls_iter = self._poll_all(due, mappings, conf)
        t_load = time.perf_counter()

        # Ingest each source's quotes as its poll completes, while the others still run.
        polls: list[Poll] = []
        problems: dict[str, Counter[str]] = {}
        accepted: Counter[str] = Counter()
        ingest = 0.0
        try:
            for poll in polls_iter:
                t_in = time.perf_counter()
                counts = problems.setdefault(poll.slug, Counter())
                if poll.result is not None:
                    counts.update(poll.result.problems)
                    rejected = aggregator.on_prices(poll.result.quotes)
                    counts.update(rejected)
                    report.rejected.update(rejected)
                    accepted[poll.slug] += len(poll.result.quotes) - rejected.total()
                if poll.error is not None:
                    report.failed[poll.slug] = poll.error.code
                    logger.warning("source %s failed: %s (%s)", poll.slug, poll.error.code, poll.detail)
                polls.append(poll)
                ingest += time.perf_counter() - t_in
        except BaseException:
            for _ in polls_iter:  # never leave an adapter polling into the next tick
                pass
            raise
        order = {row.slug: i for i, row in enumerate(due)}
        polls.sort(key=lambda poll: order.get(poll.slug, len(order)))
        report.polled = [poll.slug for poll in polls]
        report.quotes = sum(accepted.values())

        t_agg0 = time.perf_counter()
        # One instant for the whole batch (the polls took time since `now`).
        now = self.clock.time()
        results = aggregator.aggregate(symbol_ids, now=now)
        t_agg = time.perf_counter()
        report.aggregated = len(results)
        report.unpriced = sorted(set(symbol_ids) - results.keys())
        outliers = aggregator.take_outliers()
        changed = [price for price in results.values() if filt.reason(price, now) is not None]
        updates = [price_update(price) for price in changed]
        report.published = [price.symbol for price in changed]

        # Reads first, then one transaction of writes only: one commit (fsync) per tick,
        # and SQLite never has to upgrade a read transaction (that fails under contention).
        # The number of statements is bounded by the number of sources, never by symbols.
        candle_rows = self.candles.prepare(results.values(), symbol_ids=symbol_ids, now=now_dt)
        by_slug = {row.slug: row for row in rows}
        with transaction.atomic():
            self.candles.write(candle_rows)
            latest_prices_save(updates=updates, symbol_ids=symbol_ids, now=now_dt)
            for poll in polls:
                source_record_poll(
                    slug=poll.slug,
                    now=now_dt,
                    error=poll.error,
                    error_detail=poll.detail,
                    accepted=accepted[poll.slug],
                    problems=problems.get(poll.slug),
                    outliers=outliers.pop(poll.slug, 0),
                    current=by_slug.get(poll.slug),
                    conf=conf,
                )
            for slug, count in outliers.items():  # outliers of sources not polled this tick
                source_add_counts(slug=slug, outliers=count)
        t_persist = time.perf_counter()

        report.batch = publish_prices(updates, timestamp=int(now * 1000))
        for price in changed:
            filt.mark(price, now)
        t_publish = time.perf_counter()
        if report.batch is not None:
            # The prices went out; other apps (alerts) hear of it on their own threads,
            # never inside this tick's lock.
            bus.emit(PricesPublished(tuple(updates), report.batch["timestamp"]), after_commit=False)
        report.timings = {
            "load": t_load - t0,
            # Waiting for the polls; the ingest of the first ones overlaps the others.
            "poll": t_agg0 - t_load - ingest,
            "ingest": ingest,
            "aggregate": t_agg - t_agg0,
            "persist": t_persist - t_agg,
            "publish": t_publish - t_persist,
            "total": time.perf_counter() - t0,
        }
        return report

    @staticmethod
    def _sync_sources(aggregator: PriceAggregator, rows: list[Source]) -> None:
        """Disabled sources leave the aggregate at once; enabled ones join."""
        wanted = {row.slug for row in rows}
        for slug in aggregator.sources - wanted:
            aggregator.remove_source(slug)
        for slug in wanted - aggregator.sources:
            aggregator.add_source(slug)

    @staticmethod
    def _due(row: Source, now: datetime, report: TickReport) -> bool:
        if row.backoff_until is not None and row.backoff_until > now:
            report.skipped[row.slug] = "backoff"
            return False
        # A little slack so a 2 s interval polled by a 2 s beat is not skipped by jitter.
        if row.last_polled_at is not None and (now - row.last_polled_at).total_seconds() < row.poll_interval * 0.9:
            report.skipped[row.slug] = "not_due"
            return False
        return True

    @staticmethod
    def _poll_all(due: list[Source], mappings: dict[str, dict[str, str]], conf: PricesSettings) -> Iterable[Poll]:
        """Start every due poll now, on the polling threads; yields them as they complete."""
        if not due:
            return ()
        adapters = [get_adapter(source_config(row, conf)) for row in due]
        pool = thread_pool("prices-poll", POLL_THREADS)
        futures = [
            pool.submit(poll_source, adapter, mappings.get(row.slug, {}))
            for adapter, row in zip(adapters, due, strict=True)
        ]
        return _completed(futures)


def _completed(futures: list[Any]) -> Iterator[Poll]:
    for future in as_completed(futures):
        yield future.result()  # poll_source never raises


def _from_update(payload: dict[str, Any]) -> AggregatedPrice:
    return AggregatedPrice(
        symbol=str(payload["symbol"]),
        price=float(payload["price"]),
        timestamp=int(payload["timestamp"]),
        sources=tuple(payload.get("sources") or ()),
        source=str(payload.get("source", "aggregate")),
        change24h=payload.get("change24h"),
        volume24h=payload.get("volume24h"),
        stale=bool(payload.get("stale")),
        degraded=bool(payload.get("degraded")),
        twap=payload.get("twap"),
        quoted_at=payload.get("quoted_at"),
    )


#: The process's tick state (quotes, TWAP, change filter), in its runtime object.
TICKER: Slot[PriceTicker] = Slot("prices.ticker", PriceTicker)


def ticker() -> PriceTicker:
    return TICKER.get()


def prices_tick() -> TickReport:
    """Run one tick in this process."""
    return ticker().tick()
