"""`LivePrices`: event-driven aggregation, coalesced batch publication, then alerts.

A quote (a stream tick, or a REST fallback poll's quotes) re-aggregates only its
symbol: it is stored and the symbol marked changed. A flush runs at most once per
`COALESCE_WINDOW` (leading edge: a lone update after a quiet spell goes out at once)
and aggregates the changed symbols at one instant; the change filter keeps those that
moved by `DEVIATION_BPS`, reached their heartbeat or changed flags, and they go out in
**one** `apublish_many` (a `PriceUpdate` per symbol and one `PriceBatch`). Then, off
the publication path: a `PricesPublished` event for other apps (alerts) and, at most
every `PERSIST_INTERVAL`, the latest prices and candles to the database on a thread.

Freshness of stream quotes is the stream's liveness, not the quote's age (a quiet
Coinbase product sends no ticker for minutes, its heartbeat says the last one still
holds): `sweep()` refreshes the quotes of live venues and expires those of a venue
that went silent, so its symbols go degraded or stale at once. The sweep also
re-aggregates every symbol once per `SWEEP_INTERVAL` (heartbeats, REST staleness).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from django.db import close_old_connections, transaction

from realtime_project.clock import SYSTEM_CLOCK, Clock

from .aggregation import AggregatedPrice, PriceAggregator
from .change import ChangeFilter
from .conf import PricesSettings
from .events import PricesPublished
from .lag import LagHistogram
from .payloads import PriceUpdate, RecentTrade, price_update, recent_trade
from .quotes import Quote, QuoteRejected
from .services.history import CandleBook, latest_prices_save
from .sources.base import Trade
from .streams.events import Tick, TradeEvent

logger = logging.getLogger("prices.live")

Publish = Callable[[list[PriceUpdate], int], Awaitable[Any]]
Emit = Callable[[PricesPublished], None]


class RecentTrades:
    """The newest trades of every venue, for the market overview (newest first)."""

    def __init__(self, size: int) -> None:
        self._trades: deque[RecentTrade] = deque(maxlen=size)

    def add(self, venue: str, symbol: str, trade: TradeEvent | Trade) -> None:
        self._trades.appendleft(recent_trade(venue, symbol, trade))

    def latest(self) -> list[RecentTrade]:
        return sorted(self._trades, key=lambda t: t["time"], reverse=True)


class LivePrices:
    """The feed's aggregation state and its publication loop (one per feed process)."""

    def __init__(
        self,
        *,
        conf: PricesSettings,
        symbol_ids: dict[str, int],
        publish: Publish,
        emit: Emit,
        clock: Clock = SYSTEM_CLOCK,
        db: ThreadPoolExecutor | None = None,
        persist: bool = True,
    ) -> None:
        self.conf = conf
        self.symbol_ids = dict(symbol_ids)
        self.publish = publish
        self.emit = emit
        self.clock = clock
        self.db = db or ThreadPoolExecutor(max_workers=1, thread_name_prefix="prices-db")
        #: Write published prices to the database (off in tests of the pure flow).
        self.persist = persist
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
        self.candles = CandleBook()
        self.trades = RecentTrades(conf.overview_trades)
        self.dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._last_flush = -1e9
        #: Latest published update per symbol, not yet written to the database.
        self._unsaved: dict[str, PriceUpdate] = {}
        #: Latest aggregate per symbol since the last save (the minute candles' samples: one
        #: per symbol and PERSIST_INTERVAL, as the REST tick sampled one per tick).
        self._unsaved_prices: dict[str, AggregatedPrice] = {}
        self._saving: Future[None] | None = None
        #: Stream sources and the symbols whose quotes currently count (live venues).
        self._live: dict[str, set[str]] = {}
        #: Rejected quotes and outliers per source since the last health write.
        self.rejected: dict[str, Counter[str]] = {}
        self.stats: Counter[str] = Counter()
        #: Publication latency samples (seconds from flush start to published), for health.
        self.last_flush_seconds = 0.0
        self.published_at: float | None = None
        self.lag = LagHistogram()
        #: Every symbol's aggregate as of its latest flush (published or not): the market
        #: overview's movers read it instead of aggregating 500 symbols each second.
        self.latest: dict[str, AggregatedPrice] = {}

    # --- input (the streams' sink, on the loop) -------------------------------------------

    def add_source(self, source: str) -> None:
        self.aggregator.add_source(source)

    def remove_source(self, source: str) -> None:
        symbols = [s for s in self.aggregator.symbols()]
        self.aggregator.remove_source(source)
        self._live.pop(source, None)
        self._mark_many(symbols)

    def seed(self, price: AggregatedPrice, published_at: float) -> None:
        """Warm start from the last published price (stale carry-over, TWAP, filter)."""
        self.aggregator.seed(price)
        self.filter.mark(price, published_at)

    def on_tick(self, source: str, symbol: str, tick: Tick) -> str | None:
        """A stream tick; returns why it was rejected (counted against the source) or None."""
        now_ms = int(self.clock.time() * 1000)
        quoted = tick.time or now_ms
        if quoted > now_ms + self.conf.future_tolerance * 1000:
            code = "future_timestamp"
        elif quoted < now_ms - self.conf.stream_max_quote_age * 1000:
            code = "old_timestamp"
        else:
            # Freshness is the receive time (the stream's liveness keeps it fresh); the
            # venue's own time is kept as `quoted_at`.
            quote = Quote(symbol, source, tick.price, now_ms, tick.change24h, tick.volume24h, False, quoted)
            try:
                self.aggregator.on_price(quote)
            except QuoteRejected as exc:
                code = exc.code
            else:
                self._mark(symbol)
                return None
        self.rejected.setdefault(source, Counter())[code] += 1
        return code

    def on_trade(self, source: str, symbol: str, trade: TradeEvent) -> None:
        self.trades.add(source, symbol, trade)

    def on_quotes(self, source: str, quotes: Iterable[Quote]) -> Counter[str]:
        """A REST poll's quotes (fallback while the venue's stream is down, or a REST-only source)."""
        quotes = list(quotes)
        rejected = self.aggregator.on_prices(quotes)
        if rejected:
            self.rejected.setdefault(source, Counter()).update(rejected)
        self._mark_many(q.symbol for q in quotes)
        return rejected

    def on_simulated(self, quote: Quote) -> None:
        try:
            self.aggregator.on_price(quote)
        except QuoteRejected as exc:
            self.rejected.setdefault(quote.source, Counter())[exc.code] += 1
            return
        self._mark(quote.symbol)

    def _mark(self, symbol: str) -> None:
        self.dirty.add(symbol)
        self._wake.set()

    def _mark_many(self, symbols: Iterable[str]) -> None:
        self.dirty.update(symbols)
        if self.dirty:
            self._wake.set()

    # --- liveness -------------------------------------------------------------------------

    def sweep(self, live: dict[str, set[str]], *, full: bool = True) -> None:
        """`live`: per stream source, the symbols its live connections carry right now.

        Their quotes are confirmed current; a symbol that left a source's live set has
        that source's quote expired (it stops counting at once) and is re-aggregated.
        With `full`, every symbol is re-aggregated too (heartbeats, staleness of REST
        quotes, flags).
        """
        now_ms = int(self.clock.time() * 1000)
        aggregator = self.aggregator
        changed: set[str] = set()
        for source, symbols in live.items():
            before = self._live.get(source, set())
            gone = before - symbols
            if gone:
                aggregator.expire(source, gone)
                changed |= gone
                logger.info("%s: %d symbols no longer live; their quotes stop counting", source, len(gone))
            aggregator.touch(source, symbols, now_ms)
            self._live[source] = set(symbols)
        for source in set(self._live) - set(live):
            gone = self._live.pop(source)
            aggregator.expire(source, gone)
            changed |= gone
        self._mark_many(self.symbol_ids if full else changed)

    def live_sources(self) -> dict[str, set[str]]:
        return {source: set(symbols) for source, symbols in self._live.items()}

    # --- publication ----------------------------------------------------------------------

    async def run(self) -> None:
        """Flush changed symbols, at most once per COALESCE_WINDOW, until cancelled."""
        window = self.conf.coalesce_window
        try:
            while True:
                await self._wake.wait()
                wait = self._last_flush + window - self.clock.monotonic()
                if wait > 0:
                    await self.clock.sleep(wait)
                self._wake.clear()
                self._last_flush = self.clock.monotonic()
                await self.flush()
        finally:
            await self.save(final=True)

    async def flush(self) -> list[PriceUpdate]:
        """Aggregate the changed symbols, publish what the filter keeps; returns the updates."""
        if not self.dirty:
            return []
        symbols, self.dirty = self.dirty, set()
        started = time.perf_counter()
        now = self.clock.time()
        results = self.aggregator.aggregate(symbols, now=now)
        self.latest.update(results)
        reason = self.filter.reason
        changed: list[AggregatedPrice] = []
        moved: list[int] = []
        for price in results.values():
            why = reason(price, now)
            if why is not None:
                changed.append(price)
                if why == "deviation" and price.quoted_at:
                    moved.append(price.quoted_at)
        self.stats["flushes"] += 1
        if not changed:
            return []
        changed.sort(key=lambda p: p.symbol)
        updates = [price_update(price) for price in changed]
        timestamp = int(now * 1000)
        await self.publish(updates, timestamp)
        sent_ms = self.clock.time() * 1000
        add_lag = self.lag.add
        for quoted_at in moved:
            add_lag(sent_ms - quoted_at)
        mark = self.filter.mark
        for price in changed:
            mark(price, now)
        self.stats["publications"] += 1
        self.stats["updates"] += len(updates)
        self.last_flush_seconds = time.perf_counter() - started
        self.published_at = now
        # The price went out first; now tell the other apps, off this path.
        self.emit(PricesPublished(tuple(updates), timestamp))
        for update in updates:
            self._unsaved[update["symbol"]] = update
        self._unsaved_prices.update(results)
        return updates

    def outliers(self) -> Counter[str]:
        return self.aggregator.take_outliers()

    async def save(self, *, final: bool = False) -> None:
        """Write the latest published prices and due candles (one transaction, on the DB thread)."""
        if self._saving is not None and not self._saving.done():
            if not final:
                return  # the previous write is still running: the next save takes both
            await asyncio.wrap_future(self._saving)
        if not self.persist or (not self._unsaved and not self._unsaved_prices):
            return
        updates, self._unsaved = list(self._unsaved.values()), {}
        prices, self._unsaved_prices = list(self._unsaved_prices.values()), {}
        now = datetime.fromtimestamp(self.clock.time(), UTC)
        symbol_ids = self.symbol_ids
        candles = self.candles

        def write() -> None:
            try:
                rows = candles.prepare(prices, symbol_ids=symbol_ids, now=now)
                with transaction.atomic():
                    candles.write(rows)
                    latest_prices_save(updates=updates, symbol_ids=symbol_ids, now=now)
            finally:
                close_old_connections()

        future = self.db.submit(write)
        self._saving = future
        try:
            await asyncio.wrap_future(future)
        except Exception:
            logger.exception("could not save %d prices; they stay published", len(updates))
            self.stats["save_failures"] += 1
