"""Time-weighted average price over a sliding window, O(1) amortised per update."""

from __future__ import annotations

from collections import deque


class Twap:
    """TWAP of a step function: each sample's price holds until the next sample.

    `area` keeps the sum of price x duration over consecutive samples, so a query
    only clips the first segment at the window start and extends the last to `now`.
    One sample older than the window start is kept as the anchor: it is the price at
    the start of the window.
    """

    __slots__ = ("_area", "_samples", "window")

    def __init__(self, window: float) -> None:
        if window <= 0:
            raise ValueError("TWAP window must be positive")
        self.window = window
        self._samples: deque[tuple[float, float]] = deque()
        self._area = 0.0

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def last(self) -> tuple[float, float] | None:
        return self._samples[-1] if self._samples else None

    def add(self, t: float, price: float) -> None:
        """Record `price` from time `t` on. Out-of-order samples are ignored."""
        samples = self._samples
        if samples:
            last_t, last_p = samples[-1]
            if t < last_t:
                return
            if t == last_t:
                # Same instant: the newer value replaces the older one.
                samples.pop()
                if samples:
                    self._area -= samples[-1][1] * (last_t - samples[-1][0])
                self._append(t, price)
                return
            if price == last_p:
                return  # the step function is unchanged: no sample needed
        self._append(t, price)

    def _append(self, t: float, price: float) -> None:
        samples = self._samples
        if samples:
            prev_t, prev_p = samples[-1]
            self._area += prev_p * (t - prev_t)
        samples.append((t, price))

    def update(self, now: float, price: float) -> float:
        """`add(now, price)` then `value(now)`: the tick's one call per symbol, inlined.

        The common case (time moved on) is written out: it runs 500 times per tick.
        """
        samples = self._samples
        if not samples or now <= samples[-1][0]:
            self.add(now, price)
            value = self.value(now)
            return price if value is None else value
        last_t, last_p = samples[-1]
        if price != last_p:
            self._area += last_p * (now - last_t)
            samples.append((now, price))
            last_t, last_p = now, price
        start = now - self.window
        while len(samples) >= 2 and samples[1][0] <= start:
            t0, p0 = samples.popleft()
            self._area -= p0 * (samples[0][0] - t0)
        first_t, first_p = samples[0]
        begin = start if start > first_t else first_t
        duration = now - begin
        if duration <= 0:
            return last_p
        return (self._area - first_p * (begin - first_t) + last_p * (now - last_t)) / duration

    def value(self, now: float) -> float | None:
        """The TWAP over [now - window, now], or None without samples."""
        samples = self._samples
        if not samples:
            return None
        last_t, last_p = samples[-1]
        if now < last_t:
            now = last_t  # a clock that stepped back must not make durations negative
        start = now - self.window
        # Evict samples whose successor is at or before the window start.
        while len(samples) >= 2 and samples[1][0] <= start:
            t0, p0 = samples.popleft()
            self._area -= p0 * (samples[0][0] - t0)
        first_t, first_p = samples[0]
        begin = start if start > first_t else first_t
        duration = now - begin
        if duration <= 0:
            return last_p
        total = self._area - first_p * (begin - first_t) + last_p * (now - last_t)
        return total / duration
