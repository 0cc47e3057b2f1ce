"""The project's clock and the tests' `FakeClock`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from realtime_project.clock import SYSTEM_CLOCK, Clock, now_ms
from tests.support.clock import WALL, FakeClock


def test_the_system_clock_reads_what_django_and_time_read() -> None:
    clock: Clock = SYSTEM_CLOCK
    before = timezone.now()
    now = clock.now()
    assert now.tzinfo is not None and before <= now <= timezone.now()
    assert abs(clock.time() - now.timestamp()) < 1


def test_the_fake_clock_moves_only_when_told() -> None:
    fake = FakeClock(start=5.0, wall=datetime(2026, 1, 1, tzinfo=UTC))
    clock: Clock = fake
    fake.advance(2.5)
    assert clock.monotonic() == 7.5
    assert clock.now() == datetime(2026, 1, 1, 0, 0, 2, 500_000, tzinfo=UTC)
    assert now_ms(clock) == int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000) + 2_500
    fake.set(0.0)
    assert clock.time() == 0.0 and clock.monotonic() == 7.5


def test_a_fake_clock_can_follow_real_time_plus_what_it_is_advanced() -> None:
    real = [100.0]
    fake = FakeClock(wall=lambda: real[0])
    real[0] = 130.0
    fake.advance(61)
    assert fake.time() == 191.0 and fake.now() == datetime.fromtimestamp(191.0, UTC)
    fake.set(5.0)  # a jump fixes the wall reading again
    real[0] = 500.0
    assert fake.time() == 5.0


def test_a_stepping_fake_clock_moves_on_after_each_monotonic_reading() -> None:
    clock = FakeClock(start=10.0, step=0.4)
    assert [clock.monotonic() for _ in range(3)] == [10.0, 10.4, 10.8]
    # Wall time moves with it; reading it (or now()) moves nothing.
    assert clock.time() == clock.time() == pytest.approx(WALL + 1.2)
    assert clock.now() == clock.now()
    assert FakeClock(start=10.0).monotonic() == 10.0  # no step: still only by advance


async def test_sleepers_wake_when_the_clock_passes_their_deadline() -> None:
    clock = FakeClock()
    woke: list[float] = []

    async def sleeper(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(seconds)

    tasks = [asyncio.create_task(sleeper(s)) for s in (1.0, 5.0)]
    await asyncio.sleep(0)
    await clock.run_for(0.5)
    assert woke == []
    await clock.run_for(0.5)
    assert woke == [1.0]
    assert await clock.step_until(lambda: woke == [1.0, 5.0], "the long sleeper woke") == 4.0
    await asyncio.gather(*tasks)
