"""The lease state machine and its leadership loop, on an injected clock.

`FakeStore` keeps the leases' TTLs on the same fake clock as the holders, so a test
moves time forward instead of sleeping; `RedisLeaseStore` itself is tested against real
Redis in test_lease_redis.py (and two real processes in test_failover.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from realtime_project.lease import Lease, lead
from tests.support.clock import FakeClock


class FakeStore:
    """The Redis scripts' semantics, with TTLs on the injected clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.keys: dict[str, tuple[str, float]] = {}
        self.counter = 0
        self.down = False

    def _live(self, key: str) -> str | None:
        value = self.keys.get(key)
        if value is None or value[1] <= self.clock.monotonic():
            self.keys.pop(key, None)
            return None
        return value[0]

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("store down")

    def acquire(self, key: str, owner: str, ttl_ms: int) -> str | None:
        self._check()
        if self._live(key) is not None:
            return None
        self.counter += 1
        token = f"{self.counter}.{owner}"
        self.keys[key] = (token, self.clock.monotonic() + ttl_ms / 1000)
        return token

    def renew(self, key: str, token: str, ttl_ms: int) -> bool:
        self._check()
        if self._live(key) != token:
            return False
        self.keys[key] = (token, self.clock.monotonic() + ttl_ms / 1000)
        return True

    def release(self, key: str, token: str) -> bool:
        self._check()
        if self._live(key) != token:
            return False
        del self.keys[key]
        return True

    def holder(self, key: str) -> str | None:
        return self._live(key)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> FakeStore:
    return FakeStore(clock)


def lease(store: FakeStore, clock: FakeClock, owner: str) -> Lease:
    return Lease(store, "rt:lease:feeds", owner=owner, duration=3.0, clock=clock)


def test_one_holder_at_a_time_and_a_standby_takes_over_once_the_holder_stops_renewing(
    store: FakeStore, clock: FakeClock
) -> None:
    a, b = lease(store, clock, "a"), lease(store, clock, "b")
    assert a.hold() is True and a.token == "1.a" and a.fence == ("rt:lease:feeds", "1.a")
    assert b.hold() is False and b.token is None and b.fence is None
    for _ in range(10):  # renewed every second: held for as long as it lives
        clock.advance(1.0)
        assert a.hold() is True and b.hold() is False
    # `a` dies right after a renewal: `b`, trying every 0.5 s, has it within 2 x duration.
    waited = 0.0
    while not b.hold():
        clock.advance(0.5)
        waited += 0.5
    assert 3.0 <= waited <= 3.5 < 2 * a.duration
    assert b.token == "2.b"  # a new token, higher than the dead holder's
    assert not a.valid()  # by its own clock too: it stopped acting when its lease lapsed


def test_a_paused_holder_finds_its_lease_taken_and_stands_down(store: FakeStore, clock: FakeClock) -> None:
    a, b = lease(store, clock, "a"), lease(store, clock, "b")
    assert a.hold()
    clock.advance(10.0)  # `a` paused (GC, SIGSTOP, a frozen VM) far past its lease
    assert not a.valid()
    assert b.hold() and b.token == "2.b"
    assert a.hold() is False and a.token is None  # it wakes up: renewal refused, not re-taken
    assert store.holder("rt:lease:feeds") == "2.b"


def test_an_unreachable_store_keeps_the_lease_only_until_its_local_deadline(store: FakeStore, clock: FakeClock) -> None:
    a = lease(store, clock, "a")
    assert a.hold()
    store.down = True
    clock.advance(1.0)
    with pytest.raises(ConnectionError):
        a.hold()
    assert a.valid()  # 2 s of the lease left: still the holder
    clock.advance(2.0)
    with pytest.raises(ConnectionError):
        a.hold()
    assert not a.valid() and a.token is None  # its deadline passed: it acts no more
    store.down = False
    store.keys.clear()  # Redis restarted empty
    assert a.hold() and a.token == "2.a"  # a fresh acquisition, a fresh token


def test_the_deadline_counts_from_before_the_renewal_was_sent(store: FakeStore, clock: FakeClock) -> None:
    a = lease(store, clock, "a")

    slow = store.renew

    def renew_taking_a_second(key: str, token: str, ttl_ms: int) -> bool:
        clock.advance(1.0)  # the round trip took a second
        return slow(key, token, ttl_ms)

    assert a.hold()
    store.renew = renew_taking_a_second  # type: ignore[method-assign]
    sent = clock.monotonic()
    assert a.hold()
    assert a.valid_until == sent + 3.0  # never later than the key's own expiry


def test_release_hands_over_at_the_standbys_next_try(store: FakeStore, clock: FakeClock) -> None:
    a, b = lease(store, clock, "a"), lease(store, clock, "b")
    assert a.hold()
    a.release()
    assert not a.valid() and b.hold()


def test_duration_must_be_positive(store: FakeStore, clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="positive"):
        Lease(store, "k", duration=0, clock=clock)


class Loop:
    """Drives `lead()` on the fake clock: each pause advances it."""

    def __init__(self, clock: FakeClock, stop: asyncio.Event, rounds: int) -> None:
        self.clock, self.stop, self.rounds = clock, stop, rounds
        self.pauses: list[float] = []
        self.hooks: dict[int, Any] = {}

    async def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.clock.advance(seconds)
        hook = self.hooks.get(len(self.pauses))
        if hook is not None:
            hook()
        if len(self.pauses) >= self.rounds:
            self.stop.set()
        await asyncio.sleep(0)


async def call_now(fn: Any) -> bool:
    return bool(fn())


class Recorder:
    """`on_elected` / `on_deposed` that note what happened (and when, on the fake clock)."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock
        self.events: list[str] = []

    async def elected(self, token: str) -> None:
        self.events.append(f"elected {token}")

    async def deposed(self) -> None:
        when = f" at {self.clock.monotonic() - 1000.0:.1f}" if self.clock is not None else ""
        self.events.append(f"deposed{when}")

    async def lead(self, lease: Lease, loop: Loop) -> list[str]:
        await lead(
            lease, stop=loop.stop, on_elected=self.elected, on_deposed=self.deposed, call=call_now, pause=loop.pause
        )
        return self.events


async def test_lead_elects_renews_every_second_and_resigns_at_stop(store: FakeStore, clock: FakeClock) -> None:
    a = lease(store, clock, "a")
    loop = Loop(clock, asyncio.Event(), rounds=5)

    events = await Recorder().lead(a, loop)
    assert events == ["elected 1.a", "deposed"]
    assert loop.pauses == [1.0] * 5
    assert store.holder("rt:lease:feeds") is None  # resigned: a standby takes over at once


async def test_lead_stands_down_when_the_lease_is_taken_and_restarts_under_a_new_token(
    store: FakeStore, clock: FakeClock
) -> None:
    a, b = lease(store, clock, "a"), lease(store, clock, "b")
    loop = Loop(clock, asyncio.Event(), rounds=12)

    def steal() -> None:  # `a` paused past its lease meanwhile; `b` took it
        clock.advance(5.0)
        assert b.hold()

    def vanish() -> None:  # Redis restarted empty while `b` held it
        store.keys.clear()

    loop.hooks = {2: steal, 5: vanish}

    events = await Recorder().lead(a, loop)
    # Deposed when `b` took it; a standby (0.5 s tries) until the key vanished; then the
    # holder again under a new token.
    assert events == ["elected 1.a", "deposed", "elected 3.a", "deposed"]
    assert loop.pauses[:2] == [1.0, 1.0] and loop.pauses[2:5] == [0.5, 0.5, 0.5]


async def test_lead_restarts_the_work_when_the_lease_is_lost_and_retaken_at_once(
    store: FakeStore, clock: FakeClock
) -> None:
    """Redis restarted empty while held: the renewal fails, the same call takes it again
    with a new token, and the work restarts under it (old fences would be refused)."""
    a = lease(store, clock, "a")
    loop = Loop(clock, asyncio.Event(), rounds=3)
    loop.hooks = {1: store.keys.clear}

    events = await Recorder().lead(a, loop)
    assert events == ["elected 1.a", "deposed", "elected 2.a", "deposed"]


async def test_lead_keeps_the_work_through_a_store_blip_but_not_past_the_deadline(
    store: FakeStore, clock: FakeClock
) -> None:
    a = lease(store, clock, "a")
    loop = Loop(clock, asyncio.Event(), rounds=8)
    loop.hooks = {1: lambda: setattr(store, "down", True)}

    events = await Recorder(clock).lead(a, loop)
    # Renewed at t=0, store down from t=1: still active at t=1 and t=2, deposed at t=3
    # exactly when the lease would lapse in Redis; then a standby trying every 0.5 s.
    assert events == ["elected 1.a", "deposed at 3.0"]
    assert loop.pauses[:3] == [1.0, 1.0, 1.0] and set(loop.pauses[3:]) == {0.5}


def test_an_owner_with_the_value_separator_is_refused(store: FakeStore) -> None:
    # The stored value is "<token>|<client id>": an owner containing "|" would be misread.
    with pytest.raises(ValueError, match="cannot contain"):
        Lease(store, "rt:lease:feeds", owner="host|1", duration=3.0)
