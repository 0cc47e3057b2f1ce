"""Time-weighted average price over a sliding window, O(1) amortised per update."""

from __future__ import annotations

import math
from collections import deque

_INF = math.inf


class Twap:
    """TWAP of a step function: each sample's price holds until the next sample.

    `area` keeps the sum of price x duration over consecutive samples, so a query
    only clips the first segment at the window start and extends the last to `now`.
    One sample older than the window start is kept as the anchor: it is the price at
    the start of the window.

    Times and prices sit in two deques, and both ends are cached in slots: the tick's
    `update` (500 symbols every 2 s) then reads the deques only to evict, and the
    times it compares are the tick's instants, shared by every symbol (warm in cache).
    """

    __slots__ = ("_area", "_first_p", "_first_t", "_last_p", "_last_t", "_next_t", "_prices", "_times", "window")

    def __init__(self, window: float) -> None:
        if window <= 0:
            raise ValueError("TWAP window must be positive")
        self.window = window
        self._times: deque[float] = deque()
        self._prices: deque[float] = deque()
        self._area = 0.0
        self._sync()

    def __len__(self) -> int:
        return len(self._times)

    @property
    def last(self) -> tuple[float, float] | None:
        return (self._last_t, self._last_p) if self._times else None

    def _sync(self) -> None:
        """Recompute the cached ends from the deques (after a change other than `update`)."""
        times, prices = self._times, self._prices
        if times:
            self._first_t, self._first_p = times[0], prices[0]
            self._last_t, self._last_p = times[-1], prices[-1]
            self._next_t = times[1] if len(times) > 1 else _INF
        else:
            # `now <= _last_t` sends the first update of an empty TWAP down the slow path.
            self._first_t = self._last_t = self._next_t = _INF
            self._first_p = self._last_p = 0.0

    def add(self, t: float, price: float) -> None:
        """Record `price` from time `t` on. Out-of-order samples are ignored."""
        times, prices = self._times, self._prices
        if times:
            last_t = times[-1]
            if t < last_t:
                return
            if t == last_t:
                # Same instant: the newer value replaces the older one.
                times.pop()
                prices.pop()
                if times:
                    self._area -= prices[-1] * (last_t - times[-1])
                self._append(t, price)
                return
            if price == prices[-1]:
                return  # the step function is unchanged: no sample needed
        self._append(t, price)

    def _append(self, t: float, price: float) -> None:
        times, prices = self._times, self._prices
        if times:
            self._area += prices[-1] * (t - times[-1])
        times.append(t)
        prices.append(price)
        self._sync()

    def _evict(self, start: float) -> None:
        """Drop samples whose successor is at or before the window start."""
        times, prices = self._times, self._prices
        area = self._area
        while len(times) >= 2 and times[1] <= start:
            t0 = times.popleft()
            area -= prices.popleft() * (times[0] - t0)
        self._area = area
        self._first_t, self._first_p = times[0], prices[0]
        self._next_t = times[1] if len(times) > 1 else _INF

    def update(self, now: float, price: float) -> float:
        """`add(now, price)` then `value(now)`: the tick's one call per symbol.

        The common case (time moved on) is written out against the cached ends.
        """
        last_t = self._last_t
        if now <= last_t:  # empty, the same instant again, or a clock that stepped back
            self.add(now, price)
            value = self.value(now)
            return price if value is None else value
        last_p = self._last_p
        if price != last_p:
            self._area += last_p * (now - last_t)
            self._times.append(now)
            self._prices.append(price)
            if self._next_t == _INF:
                self._next_t = now  # there was a single sample: this is its successor
            self._last_t = last_t = now
            self._last_p = last_p = price
        start = now - self.window
        if self._next_t <= start:
            self._evict(start)
        first_t = self._first_t
        begin = start if start > first_t else first_t
        duration = now - begin
        if duration <= 0:
            return last_p
        return (self._area - self._first_p * (begin - first_t) + last_p * (now - last_t)) / duration

    def value(self, now: float) -> float | None:
        """The TWAP over [now - window, now], or None without samples."""
        if not self._times:
            return None
        last_t, last_p = self._last_t, self._last_p
        if now < last_t:
            now = last_t  # a clock that stepped back must not make durations negative
        start = now - self.window
        if self._next_t <= start:
            self._evict(start)
        first_t = self._first_t
        begin = start if start > first_t else first_t
        duration = now - begin
        if duration <= 0:
            return last_p
        total = self._area - self._first_p * (begin - first_t) + last_p * (now - last_t)
        return total / duration
