"""`QuoteBook`: one symbol's latest quote per source, stored column-wise, with its TWAP."""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING, Any

from .quotes import Quote
from .twap import Twap

if TYPE_CHECKING:
    from .aggregation import AggregatedPrice


class QuoteBook:
    """One symbol's state: the latest quote of each source, its TWAP and last aggregate.

    Quotes are stored column-wise, one slot per source in source-name order, so the
    usual tick (every quote fresh, no simulated one, the spread within the outlier
    bound) is a handful of C-level `min`/`sorted` calls on short lists instead of
    Python loops over quote objects, and the sources of any subset of slots come
    out already sorted.
    """

    __slots__ = (
        "blamed",
        "change_gaps",
        "changes",
        "index",
        "last",
        "prices",
        "quoted",
        "simulated",
        "sources",
        "times",
        "twap",
        "volume_gaps",
        "volumes",
    )

    def __init__(self, twap_window: float) -> None:
        self.sources: tuple[str, ...] = ()
        self.index: dict[str, int] = {}
        self.prices: list[float] = []
        self.times: list[int] = []
        #: The venues' own times of the values (ms): `quoted_at` of the aggregate.
        self.quoted: list[int] = []
        self.changes: list[float | None] = []
        self.volumes: list[float | None] = []
        #: How many slots have no 24 h change / volume (Kraken reports no change).
        self.change_gaps = self.volume_gaps = 0
        #: Slots whose current quote was already counted as an outlier.
        self.blamed: list[bool] = []
        #: Slots holding a simulated quote (None: no simulated source quotes this symbol).
        self.simulated: list[bool] | None = None
        self.twap = Twap(twap_window)
        self.last: AggregatedPrice | None = None

    def put(self, quote: Quote) -> None:
        """Store `quote` if it is newer than its source's current one."""
        slot = self.index.get(quote.source)
        if slot is None:  # a source's first quote of this symbol: rebuild in source order
            quoted = quote.timestamp if quote.quoted_at is None else quote.quoted_at
            row = (quote.source, quote.price, quote.timestamp, quote.change24h, quote.volume24h, False, quote.simulated,
                   quoted)  # fmt: skip
            self._columns(sorted([*self._rows(), row], key=itemgetter(0)))
            return
        t = quote.timestamp
        if t > self.times[slot] or (t == self.times[slot] and quote.price != self.prices[slot]):
            self.prices[slot] = quote.price
            self.times[slot] = t
            self.quoted[slot] = t if quote.quoted_at is None else quote.quoted_at
            change, volume = quote.change24h, quote.volume24h
            if change is None or self.changes[slot] is None:
                self.changes[slot] = change
                self.change_gaps = self.changes.count(None)
            else:
                self.changes[slot] = change
            if volume is None or self.volumes[slot] is None:
                self.volumes[slot] = volume
                self.volume_gaps = self.volumes.count(None)
            else:
                self.volumes[slot] = volume
            self.blamed[slot] = False
            if quote.simulated or self.simulated is not None:
                if self.simulated is None:
                    self.simulated = [False] * len(self.sources)
                self.simulated[slot] = quote.simulated

    def touch(self, source: str, t: int) -> None:
        """`source`'s quote is still current at `t` (its stream is alive): freshness only."""
        slot = self.index.get(source)
        if slot is not None and self.times[slot] < t:
            self.times[slot] = t

    def expire(self, source: str) -> None:
        """`source`'s quote stops counting (its stream went silent); a newer one replaces it."""
        slot = self.index.get(source)
        if slot is not None:
            self.times[slot] = 0

    def quote_of(self, source: str) -> float | None:
        slot = self.index.get(source)
        return self.prices[slot] if slot is not None else None

    def remove(self, source: str) -> None:
        if source in self.index:
            self._columns([row for row in self._rows() if row[0] != source])

    def _rows(self) -> list[tuple[Any, ...]]:
        simulated = self.simulated or [False] * len(self.sources)
        return list(
            zip(
                self.sources,
                self.prices,
                self.times,
                self.changes,
                self.volumes,
                self.blamed,
                simulated,
                self.quoted,
                strict=True,
            )
        )

    def _columns(self, rows: list[tuple[Any, ...]]) -> None:
        """Rebuild the columns from (source, price, time, change, volume, blamed, simulated, quoted) rows."""
        self.sources = tuple(row[0] for row in rows)
        self.index = {source: i for i, source in enumerate(self.sources)}
        self.prices = [row[1] for row in rows]
        self.times = [row[2] for row in rows]
        self.changes = [row[3] for row in rows]
        self.volumes = [row[4] for row in rows]
        self.change_gaps = self.changes.count(None)
        self.volume_gaps = self.volumes.count(None)
        self.blamed = [row[5] for row in rows]
        simulated = [row[6] for row in rows]
        self.simulated = simulated if any(simulated) else None
        self.quoted = [row[7] for row in rows]
