"""The alert index: armed rules per (kind, symbol) as sorted threshold arrays.

Pure Python, no Django, so it is benchmarked and tested on its own. A tick costs
O(log n + fired) per symbol: every condition is a contiguous range of a sorted array
(`price >= t` is a prefix, a crossing from p0 to p1 is the slice (p0, p1]), found by
bisection and cut out in one slice. Rules leave the armed set when they are taken;
the engine re-arms repeating ones after their cooldown, so a rule that stays true
is not touched again on every tick.

Memory: two parallel `array`s (a float threshold, an int64 id) per bucket, 16 bytes
per rule plus the arrays' slack, instead of a Python object per rule.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass

#: Bucket keys: ("above", SYMBOL), ("below", SYMBOL), ("cross_up"|"cross_down"|"cross_any",
#: SYMBOL), ("pct_up"|"pct_down"|"pct_any", SYMBOL, window_seconds),
#: ("pf_above"|"pf_below", user_id).
Key = tuple[str | int, ...]


class Bucket:
    """Thresholds sorted ascending with their rule ids alongside."""

    __slots__ = ("ids", "key", "thresholds")

    def __init__(self, key: Key = ()) -> None:
        self.key = key
        self.thresholds = array("d")
        self.ids = array("q")

    def __len__(self) -> int:
        return len(self.ids)

    def insert(self, threshold: float, rule_id: int) -> None:
        i = bisect_right(self.thresholds, threshold)
        self.thresholds.insert(i, threshold)
        self.ids.insert(i, rule_id)

    def remove(self, threshold: float, rule_id: int) -> bool:
        lo, hi = bisect_left(self.thresholds, threshold), bisect_right(self.thresholds, threshold)
        for j in range(lo, hi):
            if self.ids[j] == rule_id:
                del self.thresholds[j]
                del self.ids[j]
                return True
        return False

    def _cut(self, i: int, j: int) -> list[int]:
        if i >= j:
            return _NONE
        out = self.ids[i:j].tolist()
        del self.thresholds[i:j]
        del self.ids[i:j]
        return out

    def take_at_most(self, value: float) -> list[int]:
        """Rules with threshold <= value (e.g. price_above when the price is `value`)."""
        return self._cut(0, bisect_right(self.thresholds, value))

    def take_at_least(self, value: float) -> list[int]:
        """Rules with threshold >= value (price_below)."""
        return self._cut(bisect_left(self.thresholds, value), len(self.thresholds))

    def take_between(self, low: float, high: float) -> list[int]:
        """Rules with low < threshold <= high (a crossing between two prices)."""
        return self._cut(bisect_right(self.thresholds, low), bisect_right(self.thresholds, high))

    def load(self, entries: list[tuple[float, int]]) -> None:
        entries.extend(zip(self.thresholds, self.ids, strict=True))
        entries.sort()
        self.thresholds = array("d", (t for t, _ in entries))
        self.ids = array("q", (i for _, i in entries))

    def nbytes(self) -> int:
        return self.thresholds.buffer_info()[1] * 8 + self.ids.buffer_info()[1] * 8 + 64


#: Shared empty result (never mutated): most buckets fire nothing on most ticks.
_NONE: list[int] = []

#: Slots of a symbol's price buckets, in `_PriceSlots` order.
_PRICE_KINDS = ("above", "below", "cross_up", "cross_down", "cross_any")
_PERCENT_KINDS = ("pct_up", "pct_down", "pct_any")
_PORTFOLIO_KINDS = ("pf_above", "pf_below")


@dataclass(frozen=True, slots=True)
class Taken:
    """Rules taken from one bucket by one evaluation, with the value that fired them."""

    key: Key
    ids: list[int]
    value: float
    previous: float | None = None
    #: Crossings: the timestamp (ms) of the batch `previous` came from; the move ran
    #: from there, so the rule must not have fired after it (set by the engine).
    since_ts: int | None = None


class AlertIndex:
    """Buckets by key, plus per-symbol and per-user views so a tick does one dict
    lookup per symbol instead of one per kind."""

    def __init__(self) -> None:
        self.buckets: dict[Key, Bucket] = {}
        self._price: dict[str, list[Bucket | None]] = {}
        #: symbol -> window -> [pct_up, pct_down, pct_any]
        self._percent: dict[str, dict[int, list[Bucket | None]]] = {}
        self._portfolio: dict[int, list[Bucket | None]] = {}

    def __len__(self) -> int:
        return sum(len(b) for b in self.buckets.values())

    @property
    def percent_symbols(self) -> dict[str, dict[int, list[Bucket | None]]]:
        """Symbols that have (or had) percent rules: a cheap membership test per tick."""
        return self._percent

    def _bucket(self, key: Key) -> Bucket:
        bucket = self.buckets.get(key)
        if bucket is not None:
            return bucket
        bucket = self.buckets[key] = Bucket(key)
        kind = key[0]
        if kind in _PRICE_KINDS:
            slots = self._price.setdefault(str(key[1]), [None] * len(_PRICE_KINDS))
            slots[_PRICE_KINDS.index(str(kind))] = bucket
        elif kind in _PERCENT_KINDS:
            windows = self._percent.setdefault(str(key[1]), {})
            slots = windows.setdefault(int(key[2]), [None] * len(_PERCENT_KINDS))
            slots[_PERCENT_KINDS.index(str(kind))] = bucket
        elif kind in _PORTFOLIO_KINDS:
            slots = self._portfolio.setdefault(int(key[1]), [None] * len(_PORTFOLIO_KINDS))
            slots[_PORTFOLIO_KINDS.index(str(kind))] = bucket
        else:
            raise ValueError(f"unknown index key {key!r}")
        return bucket

    def add(self, key: Key, threshold: float, rule_id: int) -> None:
        self._bucket(key).insert(threshold, rule_id)

    def remove(self, key: Key, threshold: float, rule_id: int) -> bool:
        bucket = self.buckets.get(key)
        return bucket is not None and bucket.remove(threshold, rule_id)

    def bulk_load(self, entries: Iterable[tuple[Key, float, int]]) -> None:
        """Add many at once: one sort per bucket instead of an insert per rule."""
        grouped: dict[Key, list[tuple[float, int]]] = {}
        for key, threshold, rule_id in entries:
            grouped.setdefault(key, []).append((threshold, rule_id))
        for key, items in grouped.items():
            self._bucket(key).load(items)

    def match_price(self, symbol: str, previous: float | None, price: float) -> list[Taken]:
        """Take the armed price rules of `symbol` that the move previous -> price fires."""
        slots = self._price.get(symbol)
        if slots is None:
            return _NONE_TAKEN
        above, below, cross_up, cross_down, cross_any = slots
        out: list[Taken] = []
        if above is not None and above.ids:
            ids = above.take_at_most(price)
            if ids:
                out.append(Taken(above.key, ids, price, previous))
        if below is not None and below.ids:
            ids = below.take_at_least(price)
            if ids:
                out.append(Taken(below.key, ids, price, previous))
        if previous is not None and previous != price:
            # Sides: "above" is price >= t. Up-cross: previous < t <= price; down-cross:
            # price < t <= previous. So a move fires each line it crosses exactly once.
            if price > previous:
                low, high, directed = previous, price, cross_up
            else:
                low, high, directed = price, previous, cross_down
            for bucket in (directed, cross_any):
                if bucket is not None and bucket.ids:
                    ids = bucket.take_between(low, high)
                    if ids:
                        out.append(Taken(bucket.key, ids, price, previous))
        return out

    def match_percents(self, symbol: str, price: float, reference: Callable[[int], float | None]) -> list[Taken]:
        """All percent windows of `symbol` at once: `reference(window)` (the price one
        window ago) is asked only for windows that still have armed rules."""
        windows = self._percent.get(symbol)
        if not windows:
            return _NONE_TAKEN
        out: list[Taken] = []
        for window, (up, down, either) in windows.items():
            if not (
                (up is not None and up.ids) or (down is not None and down.ids) or (either is not None and either.ids)
            ):
                continue
            past = reference(window)
            if past is None:
                continue
            change = (price - past) / past * 100.0
            directed, value = (up, change) if change > 0 else (down, -change)
            for bucket in (directed, either):
                if bucket is not None and value > 0 and bucket.ids:
                    ids = bucket.take_at_most(value)
                    if ids:
                        out.append(Taken(bucket.key, ids, change, price))
        return out

    def portfolio_users(self) -> set[int]:
        return {u for u, slots in self._portfolio.items() if any(b is not None and b.ids for b in slots)}

    def match_portfolio(self, user_id: int, value: float) -> list[Taken]:
        slots = self._portfolio.get(user_id)
        if slots is None:
            return _NONE_TAKEN
        above, below = slots
        out: list[Taken] = []
        if above is not None and above.ids:
            ids = above.take_at_most(value)
            if ids:
                out.append(Taken(above.key, ids, value, None))
        if below is not None and below.ids:
            ids = below.take_at_least(value)
            if ids:
                out.append(Taken(below.key, ids, value, None))
        return out

    def nbytes(self) -> int:
        return sum(b.nbytes() for b in self.buckets.values())


#: Shared empty result (never mutated).
_NONE_TAKEN: list[Taken] = []
