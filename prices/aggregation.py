"""`PriceAggregator`: per symbol, the median of fresh quotes with outlier rejection.

Pure (no Django, no I/O) with an injectable clock, so every rule is unit-tested with
hand-computed numbers. The rules, as price oracles apply them (reference/README.md):

- only **fresh** quotes count: older than `stale_after` seconds they are ignored;
- **outliers**: with three or more fresh quotes, a quote deviating more than
  `outlier_bound` (a fraction) from the median of the *others* is dropped and
  counted against its source; the worst offender goes first and the rest are judged
  again (so one bad quote among three cannot condemn the two good ones). Two quotes
  that disagree: nobody can tell which is wrong, the median (their mean) is used and
  the price is flagged `degraded`;
- **minimum sources**: fewer accepted quotes than `min_sources` → `degraded: true`;
  no fresh quote at all → the last aggregate is repeated with `stale: true` instead of
  pretending it is current;
- the **TWAP** of the aggregate over `twap_window` seconds;
- 24 h change and volume are the medians of what the contributing sources report;
- simulated quotes never mix with real ones: they are used only for symbols no real
  source quotes freshly, and the result is labelled `source: "simulated"`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from .quotes import Quote, QuoteRejected, validate_quote
from .twap import Twap


class AggregatedPrice(NamedTuple):
    """One symbol's aggregate (a NamedTuple: built 500 times per tick, it must be cheap)."""

    symbol: str
    price: float
    timestamp: int
    sources: tuple[str, ...]
    source: str = "aggregate"
    change24h: float | None = None
    volume24h: float | None = None
    stale: bool = False
    degraded: bool = False
    twap: float | None = None
    #: Sources whose quote was rejected as an outlier for this aggregate.
    rejected: tuple[str, ...] = ()

    def as_update(self) -> dict[str, Any]:
        """The PriceUpdate wire payload (docs/prices.md)."""
        return {
            "symbol": self.symbol,
            "price": self.price,
            "change24h": self.change24h,
            "volume24h": self.volume24h,
            "timestamp": self.timestamp,
            "sources": list(self.sources),
            "source": self.source,
            "stale": self.stale,
            "degraded": self.degraded,
            "twap": self.twap,
        }


class _Entry:
    """The latest quote of one source for one symbol; `blamed` avoids double counting.

    The hot fields are copied out of the quote: attribute chains cost on 2,000 quotes.
    """

    __slots__ = ("blamed", "change", "price", "quote", "simulated", "source", "timestamp", "volume")

    def __init__(self, quote: Quote) -> None:
        self.set(quote)

    def set(self, quote: Quote) -> None:
        self.quote = quote
        self.price = quote.price
        self.timestamp = quote.timestamp
        self.source = quote.source
        self.simulated = quote.simulated
        self.change = quote.change24h
        self.volume = quote.volume24h
        self.blamed = False


def median(values: list[float]) -> float:
    """Median of a non-empty list (sorts it in place)."""
    values.sort()
    n = len(values)
    mid = n // 2
    return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2


class PriceAggregator:
    def __init__(
        self,
        *,
        stale_after: float = 120.0,
        outlier_bound: float = 0.02,
        min_sources: int = 2,
        twap_window: float = 300.0,
        future_tolerance: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if stale_after <= 0 or outlier_bound <= 0 or min_sources < 1:
            raise ValueError("stale_after and outlier_bound must be positive, min_sources >= 1")
        self.stale_after = stale_after
        self.outlier_bound = outlier_bound
        self.min_sources = min_sources
        self.twap_window = twap_window
        self.future_tolerance = future_tolerance
        self.clock = clock
        self._sources: set[str] = set()
        self._quotes: dict[str, dict[str, _Entry]] = {}
        self._twaps: dict[str, Twap] = {}
        self._last: dict[str, AggregatedPrice] = {}
        self.outliers: Counter[str] = Counter()
        self._sorted: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.started = False

    # --- sources ---------------------------------------------------------------------

    def start(self, sources: Iterable[str] = ()) -> None:
        """(Re)start: forget quotes, TWAP samples and counters; register `sources`."""
        self._sources = set(sources)
        self._quotes.clear()
        self._twaps.clear()
        self._last.clear()
        self.outliers.clear()
        self.started = True

    def add_source(self, source: str) -> None:
        self._sources.add(source)

    def remove_source(self, source: str) -> None:
        """Stop counting `source`: its quotes leave every aggregate at once."""
        self._sources.discard(source)
        for entries in self._quotes.values():
            entries.pop(source, None)

    @property
    def sources(self) -> frozenset[str]:
        return frozenset(self._sources)

    # --- input -----------------------------------------------------------------------

    def on_price(self, quote: Quote) -> Quote:
        """Accept a quote (the newest per source and symbol wins); returns it as stored.

        Raises QuoteRejected (`unknown_source`, `invalid_price`, `future_timestamp`,
        `invalid_timestamp`): such a quote never touches the aggregate.
        """
        if quote.source not in self._sources:
            raise QuoteRejected("unknown_source", f"source {quote.source!r} is not registered")
        now_ms = int(self.clock() * 1000)
        quote = validate_quote(quote, now_ms=now_ms, future_tolerance_ms=int(self.future_tolerance * 1000))
        entries = self._quotes.setdefault(quote.symbol, {})
        entry = entries.get(quote.source)
        if entry is None:
            entries[quote.source] = _Entry(quote)
        elif quote.timestamp > entry.timestamp or (quote.timestamp == entry.timestamp and quote.price != entry.price):
            entry.set(quote)
        return quote

    def seed(self, price: AggregatedPrice) -> None:
        """Warm start (a new worker process): the last published aggregate of a symbol."""
        self._last[price.symbol] = price
        twap = self._twaps.get(price.symbol)
        if twap is None:
            twap = self._twaps[price.symbol] = Twap(self.twap_window)
        twap.add(price.timestamp / 1000, price.price)

    # --- output ----------------------------------------------------------------------

    def symbols(self) -> list[str]:
        return list(self._quotes.keys() | self._last.keys())

    def get_price(self, symbol: str, *, now: float | None = None) -> AggregatedPrice | None:
        """The aggregate of `symbol` at `now` (default: the clock), or None if never quoted."""
        if now is None:
            now = self.clock()
        return self._price(symbol, now, int(now * 1000), int((now - self.stale_after) * 1000))

    def _price(self, symbol: str, now: float, now_ms: int, fresh_after: int) -> AggregatedPrice | None:
        pool: list[_Entry] = []
        simulated: list[_Entry] = []
        entries = self._quotes.get(symbol)
        if entries:
            for entry in entries.values():
                if entry.timestamp >= fresh_after:
                    (simulated if entry.simulated else pool).append(entry)
        is_real = bool(pool)
        if not is_real:
            pool = simulated
            if not pool:
                return self._stale(symbol, now)
        accepted, degraded, rejected = self._reject_outliers(pool)
        n = len(accepted)
        if n == 1:
            only = accepted[0].quote
            price, change, volume = only.price, only.change24h, only.volume24h
            sources: tuple[str, ...] = (only.source,)
        else:
            prices: list[float] = []
            changes: list[float] = []
            volumes: list[float] = []
            names: list[str] = []
            for e in accepted:
                prices.append(e.price)
                names.append(e.source)
                if e.change is not None:
                    changes.append(e.change)
                if e.volume is not None:
                    volumes.append(e.volume)
            price = median(prices)
            change = median(changes) if changes else None
            volume = median(volumes) if volumes else None
            key = tuple(names)
            cached = self._sorted.get(key)  # the same few source sets every tick
            if cached is None:
                cached = self._sorted[key] = tuple(sorted(names))
            sources = cached
        twap = self._twaps.get(symbol)
        if twap is None:
            twap = self._twaps[symbol] = Twap(self.twap_window)
        result = AggregatedPrice(
            symbol,
            price,
            now_ms,
            sources,
            "aggregate" if is_real else "simulated",
            change,
            volume,
            False,
            degraded or n < self.min_sources,
            twap.update(now, price),
            rejected,
        )
        self._last[symbol] = result
        return result

    def aggregate(
        self, symbols: Iterable[str] | None = None, *, now: float | None = None
    ) -> dict[str, AggregatedPrice]:
        """`get_price` for many symbols (default: every symbol ever quoted) at one instant."""
        if now is None:
            now = self.clock()
        now_ms, fresh_after = int(now * 1000), int((now - self.stale_after) * 1000)
        compute = self._price
        out: dict[str, AggregatedPrice] = {}
        for symbol in self.symbols() if symbols is None else symbols:
            price = compute(symbol, now, now_ms, fresh_after)
            if price is not None:
                out[symbol] = price
        return out

    def take_outliers(self) -> Counter[str]:
        """Outliers counted per source since the last call (for source health)."""
        counts, self.outliers = self.outliers, Counter()
        return counts

    # --- rules -----------------------------------------------------------------------

    def _stale(self, symbol: str, now: float) -> AggregatedPrice | None:
        last = self._last.get(symbol)
        if last is None:
            return None
        twap = self._twaps.get(symbol)
        stale = last._replace(
            sources=(), stale=True, degraded=True, rejected=(), twap=twap.value(now) if twap else last.twap
        )
        self._last[symbol] = stale
        return stale

    def _reject_outliers(self, pool: list[_Entry]) -> tuple[list[_Entry], bool, tuple[str, ...]]:
        """(accepted entries, degraded, rejected sources) for the fresh quotes of one symbol."""
        n = len(pool)
        if n == 1:
            return pool, False, ()
        low = high = pool[0].price
        for entry in pool:
            p = entry.price
            if p < low:
                low = p
            elif p > high:
                high = p
        bound = self.outlier_bound
        # Fast path: the median of any subset lies in [low, high], so if the whole range
        # is within the bound no quote can deviate more than the bound from it.
        if (high - low) / low <= bound:
            return pool, False, ()
        # Drop the worst offender one at a time, then judge the rest again: with three
        # quotes and one bad, the median of the others is the mean of a good and a bad
        # one, so judging all at once would condemn the good ones too.
        accepted = list(pool)
        outliers: list[_Entry] = []
        while len(accepted) >= 3:
            prices = [e.price for e in accepted]
            worst, worst_dev = -1, bound
            for i, p in enumerate(prices):
                ref = median(prices[:i] + prices[i + 1 :])
                dev = abs(p - ref) / ref
                if dev > worst_dev:
                    worst, worst_dev = i, dev
            if worst < 0:
                break
            outliers.append(accepted.pop(worst))
        # Two quotes that disagree: nobody can tell which one is wrong.
        degraded = len(accepted) == 2 and abs(accepted[0].price - accepted[1].price) > bound * min(
            accepted[0].price, accepted[1].price
        )
        for entry in outliers:
            if not entry.blamed:
                entry.blamed = True
                self.outliers[entry.source] += 1
        return accepted, degraded, tuple(sorted(e.source for e in outliers))
