"""The project's one clock: wall time, monotonic time, aware datetimes and sleeping.

Code whose behaviour depends on time takes a `Clock` (default `SYSTEM_CLOCK`) instead of
calling `time`, `timezone.now` or `asyncio.sleep` itself, so tests move time with
`tests.support.clock.FakeClock` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the Unix epoch (timestamps that leave the process)."""

    def monotonic(self) -> float:
        """Seconds that never go backwards (deadlines, intervals, TTLs)."""

    def now(self) -> datetime:
        """The wall clock as an aware UTC datetime (what `django.utils.timezone.now` gives)."""

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` on this clock."""


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


def now_ms(clock: Clock = SYSTEM_CLOCK) -> int:
    """Wall-clock milliseconds since the Unix epoch (the protocol's `server_time`)."""
    return int(clock.time() * 1000)
