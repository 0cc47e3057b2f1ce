"""The clock as an injectable object, so tests move time instead of sleeping."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


class FakeClock:
    """A clock for tests: `advance(seconds)` moves both readings."""

    def __init__(self, start: float = 1_000.0, wall: float = 1_700_000_000.0) -> None:
        self._mono = start
        self._wall = wall

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        self._mono += seconds
        self._wall += seconds


SYSTEM_CLOCK = SystemClock()


def now_ms(clock: Clock = SYSTEM_CLOCK) -> int:
    """Wall-clock milliseconds since the Unix epoch (the protocol's `server_time`)."""
    return int(clock.time() * 1000)
