"""`FakeClock`: the project's `Clock` for tests, moved by the test instead of by time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

#: 2023-11-14 22:13:20 UTC: a fixed wall time (a round number of seconds).
WALL = 1_700_000_000.0


class FakeClock:
    """Wall and monotonic readings that move together, only by `advance`.

    `sleep` waits until the clock has been advanced past its deadline; `advance` wakes
    those sleepers (the async `run_for` also lets them run). `wall` may be a number of
    seconds, an aware datetime, or a function such as `time.time`: then the wall reading
    follows that function, plus what `advance` added (for tests whose peers stamp real
    time, such as the fake exchanges' quotes), until `set` fixes it.

    `step` makes time pass by itself for sync code the test cannot interrupt: every
    `monotonic()` reading moves the clock on by `step` after it is taken, as if the work
    between two readings took that long (a backfill reading the clock once per batch).
    """

    def __init__(
        self, start: float = 1_000.0, wall: float | datetime | Callable[[], float] = WALL, *, step: float = 0.0
    ) -> None:
        self._mono = start
        self.step = step
        self._follow: Callable[[], float] | None = None
        self._wall = 0.0
        if callable(wall):
            self._follow = wall
        else:
            self.set(wall)
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        #: Every `sleep` asked for, in order (what a test of delays asserts on).
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self._wall if self._follow is None else self._follow() + self._wall

    def monotonic(self) -> float:
        reading = self._mono
        if self.step:
            self.advance(self.step)
        return reading

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._mono + max(0.0, seconds), fut))
        try:
            await fut
        finally:
            self._sleepers = [(d, f) for d, f in self._sleepers if f is not fut]

    def advance(self, seconds: float) -> None:
        """Move both readings; sleepers now due are woken (they run at the next await)."""
        self._wall += seconds
        self._mono += seconds
        for due, fut in list(self._sleepers):
            if due <= self._mono and not fut.done():
                fut.set_result(None)

    def set(self, wall: float | datetime) -> None:
        """Jump the wall clock (monotonic time does not follow: it never goes back)."""
        self._follow = None
        self._wall = wall.timestamp() if isinstance(wall, datetime) else float(wall)

    async def run_for(self, seconds: float) -> None:
        """`advance`, then let the woken sleepers run."""
        self.advance(seconds)
        for _ in range(5):
            await asyncio.sleep(0)

    async def step_until(
        self, predicate: Callable[[], Any], what: str, *, step: float = 0.25, limit: float = 120.0
    ) -> float:
        """Advance in `step`s (letting the loop run between them) until `predicate`; returns
        the simulated seconds it took. Fails after `limit` simulated seconds."""
        elapsed = 0.0
        while not predicate():
            if elapsed >= limit:
                raise AssertionError(f"{what} never happened in {limit} simulated seconds")
            await self.run_for(step)
            await asyncio.sleep(0.005)  # real I/O (a close handshake, a reconnect) may be involved
            elapsed += step
        return elapsed
