"""`PriceAggregator`: per symbol, the median of fresh quotes with outlier rejection.

Pure (no Django, no I/O) with an injected clock, so every rule is unit-tested with
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

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from .book import QuoteBook
from .quotes import Quote, QuoteRejected, validate_quote

if TYPE_CHECKING:
    # For the annotation only: importing realtime_project.clock at run time would load the
    # realtime_project package (its Celery app, hence Django) into this pure module. The
    # clock is always injected by the aggregator's owner (the ticker, the live feed).
    from realtime_project.clock import Clock


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
    #: The venue time (ms) of the newest quote in this aggregate: how old the data is.
    quoted_at: int | None = None


#: `AggregatedPrice(*fields)` without the generated `__new__`'s Python frame (500 per tick).
_new_price = tuple.__new__


def _median_without(ordered: list[float], k: int) -> float:
    """Median of the sorted list `ordered` without its element at index `k` (no copy, no sort)."""
    n = len(ordered) - 1
    mid = n // 2
    hi = ordered[mid] if mid < k else ordered[mid + 1]
    if n % 2:
        return hi
    lo = ordered[mid - 1] if mid - 1 < k else ordered[mid]
    return (lo + hi) / 2


class PriceAggregator:
    def __init__(
        self,
        *,
        stale_after: float = 120.0,
        outlier_bound: float = 0.02,
        min_sources: int = 2,
        twap_window: float = 300.0,
        future_tolerance: float = 5.0,
        clock: Clock,
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
        self._books: dict[str, QuoteBook] = {}
        self.outliers: Counter[str] = Counter()
        self.started = False

    # --- sources ---------------------------------------------------------------------

    def start(self, sources: Iterable[str] = ()) -> None:
        """(Re)start: forget quotes, TWAP samples and counters; register `sources`."""
        self._sources = set(sources)
        self._books.clear()
        self.outliers.clear()
        self.started = True

    def add_source(self, source: str) -> None:
        self._sources.add(source)

    def remove_source(self, source: str) -> None:
        """Stop counting `source`: its quotes leave every aggregate at once."""
        self._sources.discard(source)
        for book in self._books.values():
            book.remove(source)

    @property
    def sources(self) -> frozenset[str]:
        return frozenset(self._sources)

    # --- input -----------------------------------------------------------------------

    def on_price(self, quote: Quote) -> Quote:
        """Accept a quote (the newest per source and symbol wins); returns it as stored.

        Raises QuoteRejected (`unknown_source`, `invalid_price`, `future_timestamp`,
        `invalid_timestamp`): such a quote never touches the aggregate.
        """
        return self._store(quote, int(self.clock.time() * 1000), int(self.future_tolerance * 1000))

    def on_prices(self, quotes: Iterable[Quote]) -> Counter[str]:
        """`on_price` for a poll's quotes, judged at one instant; returns rejections by code."""
        rejected: Counter[str] = Counter()
        now_ms, tolerance_ms = int(self.clock.time() * 1000), int(self.future_tolerance * 1000)
        store = self._store
        for quote in quotes:
            try:
                store(quote, now_ms, tolerance_ms)
            except QuoteRejected as exc:
                rejected[exc.code] += 1
        return rejected

    def _store(self, quote: Quote, now_ms: int, tolerance_ms: int) -> Quote:
        if quote.source not in self._sources:
            raise QuoteRejected("unknown_source", f"source {quote.source!r} is not registered")
        quote = validate_quote(quote, now_ms=now_ms, future_tolerance_ms=tolerance_ms)
        book = self._books.get(quote.symbol)
        if book is None:
            book = self._books[quote.symbol] = QuoteBook(self.twap_window)
        book.put(quote)
        return quote

    def touch(self, source: str, symbols: Iterable[str], now_ms: int) -> None:
        """`source`'s quotes of `symbols` are still current (its stream is alive)."""
        books = self._books
        for symbol in symbols:
            book = books.get(symbol)
            if book is not None:
                book.touch(source, now_ms)

    def expire(self, source: str, symbols: Iterable[str]) -> None:
        """`source`'s quotes of `symbols` stop counting at once (its stream went silent)."""
        books = self._books
        for symbol in symbols:
            book = books.get(symbol)
            if book is not None:
                book.expire(source)

    def quote_of(self, symbol: str, source: str) -> float | None:
        """`source`'s current price for `symbol` (reconciliation), or None."""
        book = self._books.get(symbol)
        return book.quote_of(source) if book is not None else None

    def seed(self, price: AggregatedPrice) -> None:
        """Warm start (a new worker process): the last published aggregate of a symbol."""
        book = self._books.get(price.symbol)
        if book is None:
            book = self._books[price.symbol] = QuoteBook(self.twap_window)
        book.last = price
        book.twap.add(price.timestamp / 1000, price.price)

    # --- output ----------------------------------------------------------------------

    def symbols(self) -> list[str]:
        return list(self._books)

    def get_price(self, symbol: str, *, now: float | None = None) -> AggregatedPrice | None:
        """The aggregate of `symbol` at `now` (default: the clock), or None if never quoted."""
        if now is None:
            now = self.clock.time()
        book = self._books.get(symbol)
        if book is None:
            return None
        return self._price(book, symbol, now, int(now * 1000), int((now - self.stale_after) * 1000))

    def aggregate(
        self, symbols: Iterable[str] | None = None, *, now: float | None = None
    ) -> dict[str, AggregatedPrice]:
        """`get_price` for many symbols (default: every symbol ever quoted) at one instant."""
        if now is None:
            now = self.clock.time()
        now_ms, fresh_after = int(now * 1000), int((now - self.stale_after) * 1000)
        compute = self._price
        books = self._books
        out: dict[str, AggregatedPrice] = {}
        for symbol in self.symbols() if symbols is None else symbols:
            book = books.get(symbol)
            if book is not None:
                price = compute(book, symbol, now, now_ms, fresh_after)
                if price is not None:
                    out[symbol] = price
        return out

    def take_outliers(self) -> Counter[str]:
        """Outliers counted per source since the last call (for source health)."""
        counts, self.outliers = self.outliers, Counter()
        return counts

    # --- rules -----------------------------------------------------------------------

    def _price(self, book: QuoteBook, symbol: str, now: float, now_ms: int, fresh_after: int) -> AggregatedPrice | None:
        """One symbol's aggregate: the hot loop of a tick (500 symbols x 4 quotes).

        The usual case (every quote fresh and real, the spread within the outlier bound)
        touches the book's columns only through C-level builtins; `slots` (the fresh,
        accepted source slots) is built only when some quote does not count.
        """
        times = book.times
        slots: list[int] | None = None
        is_real = True
        if times and book.simulated is None and min(times) >= fresh_after:
            prices = book.prices
        else:
            slots = [i for i, t in enumerate(times) if t >= fresh_after]
            if book.simulated is not None and slots:
                # Simulated quotes never mix with real ones: only when no real one is fresh.
                simulated = book.simulated
                real = [i for i in slots if not simulated[i]]
                if real:
                    slots = real
                else:
                    is_real = False
            if not slots:
                return self._stale(book, now)
            prices = [book.prices[i] for i in slots]
        n = len(prices)
        degraded = False
        rejected: tuple[str, ...] = ()
        if n > 1:
            prices = sorted(prices)  # one C call gives the spread and the median
            # The median of any subset lies in [low, high]: if the whole spread is within
            # the bound, no quote can deviate more than the bound from the others' median.
            if (prices[-1] - prices[0]) / prices[0] > self.outlier_bound:
                slots, degraded, rejected = self._reject_outliers(book, list(range(n)) if slots is None else slots)
                prices = sorted([book.prices[i] for i in slots])
                n = len(slots)
        changes: list[Any]
        volumes: list[Any]
        if slots is None:
            quoted = max(book.quoted)
            sources = book.sources
            changes = [c for c in book.changes if c is not None] if book.change_gaps else book.changes
            volumes = [v for v in book.volumes if v is not None] if book.volume_gaps else book.volumes
        else:
            sources = book.sources if n == len(times) else tuple([book.sources[i] for i in slots])
            quoted = max([book.quoted[i] for i in slots])
            changes = [c for c in (book.changes[i] for i in slots) if c is not None]
            volumes = [v for v in (book.volumes[i] for i in slots) if v is not None]
        # The price's median written out (its values are sorted already).
        if n == 1:
            price = prices[0]
        else:
            mid = n >> 1
            price = prices[mid] if n & 1 else (prices[mid - 1] + prices[mid]) * 0.5
        change = _median_or_none(changes)
        volume = _median_or_none(volumes)
        result: AggregatedPrice = _new_price(
            AggregatedPrice,
            (
                symbol,
                price,
                now_ms,
                sources,
                "aggregate" if is_real else "simulated",
                change,
                volume,
                False,
                degraded or n < self.min_sources,
                book.twap.update(now, price),
                rejected,
                quoted or None,
            ),
        )
        book.last = result
        return result

    def _stale(self, book: QuoteBook, now: float) -> AggregatedPrice | None:
        last = book.last
        if last is None:
            return None
        twap = book.twap.value(now)
        stale = last._replace(
            sources=(), stale=True, degraded=True, rejected=(), twap=last.twap if twap is None else twap
        )
        book.last = stale
        return stale

    def _reject_outliers(self, book: QuoteBook, slots: list[int]) -> tuple[list[int], bool, tuple[str, ...]]:
        """(accepted slots, degraded, rejected sources) when the spread exceeds the bound."""
        bound = self.outlier_bound
        # Drop the worst offender one at a time, then judge the rest again: with three
        # quotes and one bad, the median of the others is the mean of a good and a bad
        # one, so judging all at once would condemn the good ones too.
        accepted = list(slots)
        outliers: list[int] = []
        while len(accepted) >= 3:
            prices = [book.prices[i] for i in accepted]
            ordered = sorted(prices)
            worst, worst_dev = -1, bound
            for i, p in enumerate(prices):
                # Removing any copy of p leaves the same others: locate one in the sorted list.
                ref = _median_without(ordered, bisect_left(ordered, p))
                dev = abs(p - ref) / ref
                if dev > worst_dev:
                    worst, worst_dev = i, dev
            if worst < 0:
                break
            outliers.append(accepted.pop(worst))
        # Two quotes that disagree: nobody can tell which one is wrong.
        degraded = False
        if len(accepted) == 2:
            a, b = book.prices[accepted[0]], book.prices[accepted[1]]
            degraded = abs(a - b) > bound * min(a, b)
        for slot in outliers:
            if not book.blamed[slot]:
                book.blamed[slot] = True
                self.outliers[book.sources[slot]] += 1
        return accepted, degraded, tuple(sorted(book.sources[slot] for slot in outliers))


def _median_or_none(values: list[Any]) -> float | None:
    """Median of a few unsorted values; None when there are none."""
    k = len(values)
    if k < 2:
        return float(values[0]) if k else None
    ordered: list[float] = sorted(values)
    mid = k >> 1
    return ordered[mid] if k & 1 else (ordered[mid - 1] + ordered[mid]) * 0.5
