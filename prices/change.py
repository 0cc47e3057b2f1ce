"""Change-driven publishing: publish a symbol on deviation, heartbeat or a flag change.

As price oracles do (Chainlink: 0.5 % or 1 h for ETH/USD): a quiet symbol costs no
bandwidth, yet every subscriber sees each symbol at least once per heartbeat.
Pure, with explicit times, so tests need no clock.
"""

from __future__ import annotations

from typing import NamedTuple

from .aggregation import AggregatedPrice


class Published(NamedTuple):
    """What was last published for a symbol (a NamedTuple: up to 500 are marked per tick)."""

    price: float
    at: float
    stale: bool
    degraded: bool


class ChangeFilter:
    def __init__(self, *, deviation_bps: float, heartbeat: float) -> None:
        if deviation_bps < 0 or heartbeat <= 0:
            raise ValueError("deviation_bps must be >= 0 and heartbeat > 0")
        self.deviation_bps = deviation_bps
        self.heartbeat = heartbeat
        self._last: dict[str, Published] = {}

    def reason(self, price: AggregatedPrice, now: float) -> str | None:
        """Why `price` must be published now ('first', 'deviation', 'heartbeat', 'flags'), or None."""
        last = self._last.get(price.symbol)
        if last is None:
            return "first"
        if price.stale != last.stale or price.degraded != last.degraded:
            return "flags"
        # A hair of tolerance so a move of exactly the threshold counts despite float error.
        if abs(price.price - last.price) / last.price * 10_000 + 1e-9 >= self.deviation_bps:
            return "deviation"
        if now - last.at >= self.heartbeat:
            return "heartbeat"
        return None

    def mark(self, price: AggregatedPrice, now: float) -> None:
        """Record that `price` was published at `now`."""
        self._last[price.symbol] = Published(price.price, now, price.stale, price.degraded)

    def last(self, symbol: str) -> Published | None:
        return self._last.get(symbol)
