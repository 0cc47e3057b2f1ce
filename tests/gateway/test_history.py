"""History: recovery planning (pure) and the in-memory store with a fake clock (no event loop).

MemoryHistory's coroutines never suspend, so they are driven with `run()` below instead of
an event loop; a coroutine that did suspend would make `run()` fail loudly.
"""

from __future__ import annotations

import re
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from realtime_project.gateway.history import (
    MemoryHistory,
    Position,
    Publication,
    Recovery,
    new_epoch,
    plan_recovery,
    recover,
)
from realtime_project.gateway.protocol import Since
from tests.support.clock import FakeClock

T = TypeVar("T")
E = "e0e0e0e0"


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Drive a coroutine that completes without suspending."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise AssertionError("coroutine suspended: it needs an event loop")


def pubs(first: int, last: int, epoch: str = E) -> list[Publication]:
    return [Publication(seq, epoch, f'{{"n":{seq}}}') for seq in range(first, last + 1)]


# --- plan_recovery --------------------------------------------------------------------


class TestPlanRecovery:
    def test_same_epoch_exact_replay(self) -> None:
        result = plan_recovery(Since(E, 3), Position(E, 7), pubs(4, 7))
        assert result == Recovery(True, Position(E, 7), tuple(pubs(4, 7)))
        assert [p.seq for p in result.missed] == [4, 5, 6, 7]

    def test_up_to_date_position_recovers_with_nothing_missed(self) -> None:
        assert plan_recovery(Since(E, 7), Position(E, 7), []) == Recovery(True, Position(E, 7), ())

    def test_zero_on_a_channel_without_publications(self) -> None:
        assert plan_recovery(Since(E, 0), Position(E, 0), []) == Recovery(True, Position(E, 0))

    def test_from_zero_with_full_history(self) -> None:
        assert plan_recovery(Since(E, 0), Position(E, 3), pubs(1, 3)).recovered

    def test_epoch_changed(self) -> None:
        result = plan_recovery(Since("old", 3), Position(E, 7), pubs(4, 7))
        assert result == Recovery(False, Position(E, 7))
        assert result.missed == ()

    def test_seq_in_the_future(self) -> None:
        assert plan_recovery(Since(E, 8), Position(E, 7), []) == Recovery(False, Position(E, 7))

    def test_future_seq_after_epoch_restart(self) -> None:
        assert not plan_recovery(Since(E, 100), Position(E, 0), []).recovered

    def test_older_than_retained_history(self) -> None:
        # History kept 5..7 only; the client last saw 2.
        assert plan_recovery(Since(E, 2), Position(E, 7), pubs(5, 7)) == Recovery(False, Position(E, 7))

    def test_nothing_retained(self) -> None:
        assert not plan_recovery(Since(E, 2), Position(E, 7), []).recovered

    def test_hole_in_the_middle(self) -> None:
        available = [p for p in pubs(4, 8) if p.seq != 6]
        assert not plan_recovery(Since(E, 3), Position(E, 8), available).recovered

    def test_missing_tail(self) -> None:
        # The log stops at 6 but the channel is at 8: replaying would leave a gap.
        assert not plan_recovery(Since(E, 3), Position(E, 8), pubs(4, 6)).recovered

    def test_duplicate_is_a_hole(self) -> None:
        available = pubs(4, 5) + pubs(5, 6)
        assert not plan_recovery(Since(E, 3), Position(E, 6), available).recovered

    def test_out_of_order_is_refused(self) -> None:
        assert not plan_recovery(Since(E, 3), Position(E, 6), list(reversed(pubs(4, 6)))).recovered

    def test_position_is_always_reported(self) -> None:
        for since in (Since(E, 1), Since("x", 1), Since(E, 99)):
            assert plan_recovery(since, Position(E, 5), []).position == Position(E, 5)

    def test_publications_of_another_epoch_are_not_a_recovery(self) -> None:
        result = plan_recovery(Since(E, 3), Position(E, 7), pubs(4, 7, epoch="newepoch"))
        assert not result.recovered


def test_new_epoch_shape_and_uniqueness() -> None:
    epochs = {new_epoch() for _ in range(1000)}
    assert len(epochs) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{8}", e) for e in epochs)


# --- MemoryHistory --------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> MemoryHistory:
    return MemoryHistory(clock)


class TestMemoryHistory:
    def test_unknown_channel_position(self, store: MemoryHistory) -> None:
        pos = run(store.position("c"))
        assert pos.seq == 0 and isinstance(pos.epoch, str) and pos.epoch
        assert run(store.position("c")) == pos  # stable
        assert run(store.latest("c")) is None
        assert run(store.range("c", 0)) == []

    def test_append_numbers_from_one_in_the_read_epoch(self, store: MemoryHistory) -> None:
        epoch = run(store.position("c")).epoch
        first = run(store.append("c", "1", size=10, ttl=60))
        second = run(store.append("c", "2", size=10, ttl=60))
        assert (first, second) == (Publication(1, epoch, "1"), Publication(2, epoch, "2"))
        assert run(store.position("c")) == Position(epoch, 2)
        assert run(store.latest("c")) == second

    def test_channels_are_independent(self, store: MemoryHistory) -> None:
        run(store.append("a", "x", size=10, ttl=60))
        run(store.append("a", "y", size=10, ttl=60))
        b = run(store.append("b", "z", size=10, ttl=60))
        assert b.seq == 1
        assert run(store.position("a")).seq == 2
        assert run(store.position("a")).epoch != run(store.position("b")).epoch

    def test_range_bounds(self, store: MemoryHistory) -> None:
        for i in range(1, 8):
            run(store.append("c", str(i), size=100, ttl=60))
        assert [p.seq for p in run(store.range("c", 0))] == [1, 2, 3, 4, 5, 6, 7]
        assert [p.seq for p in run(store.range("c", 3))] == [4, 5, 6, 7]
        assert [p.seq for p in run(store.range("c", 3, 5))] == [4, 5]
        assert run(store.range("c", 7)) == []
        assert run(store.range("c", 5, 5)) == []

    def test_size_trimming(self, store: MemoryHistory) -> None:
        for i in range(1, 11):
            run(store.append("c", str(i), size=3, ttl=60))
        assert [p.payload for p in run(store.range("c", 0))] == ["8", "9", "10"]
        assert run(store.position("c")).seq == 10
        assert run(store.latest("c")).payload == "10"  # type: ignore[union-attr]

    def test_size_can_shrink(self, store: MemoryHistory) -> None:
        for i in range(5):
            run(store.append("c", str(i), size=5, ttl=60))
        run(store.append("c", "last", size=2, ttl=60))
        assert [p.seq for p in run(store.range("c", 0))] == [5, 6]

    def test_size_zero_keeps_nothing(self, store: MemoryHistory) -> None:
        pub = run(store.append("c", "x", size=0, ttl=60))
        assert pub.seq == 1
        assert run(store.range("c", 0)) == []
        assert run(store.latest("c")) is None

    def test_ttl_expiry_starts_a_new_epoch(self, store: MemoryHistory, clock: FakeClock) -> None:
        first = run(store.append("c", "a", size=10, ttl=30))
        clock.advance(29.999)
        assert run(store.position("c")) == Position(first.epoch, 1)
        clock.advance(0.001)
        pos = run(store.position("c"))
        assert pos.epoch != first.epoch and pos.seq == 0
        assert run(store.range("c", 0)) == [] and run(store.latest("c")) is None
        again = run(store.append("c", "b", size=10, ttl=30))
        assert again == Publication(1, pos.epoch, "b")

    def test_each_append_extends_the_ttl_reads_do_not(self, store: MemoryHistory, clock: FakeClock) -> None:
        first = run(store.append("c", "a", size=10, ttl=10))
        clock.advance(8)
        run(store.append("c", "b", size=10, ttl=10))
        clock.advance(8)  # 16 s after the first append, 8 after the second
        assert run(store.position("c")).epoch == first.epoch
        for _ in range(5):
            clock.advance(0.5)
            run(store.range("c", 0))
        assert run(store.position("c")).epoch != first.epoch  # 10.5 s after the last append

    def test_read_only_channel_never_expires(self, store: MemoryHistory, clock: FakeClock) -> None:
        epoch = run(store.position("c")).epoch
        clock.advance(10**7)
        assert run(store.position("c")).epoch == epoch

    def test_flush_forgets_everything(self, store: MemoryHistory) -> None:
        old = run(store.append("c", "a", size=10, ttl=60))
        store.flush()
        pos = run(store.position("c"))
        assert pos.epoch != old.epoch and pos.seq == 0

    def test_ping(self, store: MemoryHistory) -> None:
        assert run(store.ping()) is True


class TestRecoverWithMemoryHistory:
    def fill(self, store: MemoryHistory, n: int, size: int = 100) -> str:
        epoch = ""
        for i in range(1, n + 1):
            epoch = run(store.append("c", f'{{"i":{i}}}', size=size, ttl=60)).epoch
        return epoch

    def test_exact_replay(self, store: MemoryHistory) -> None:
        epoch = self.fill(store, 10)
        result = run(recover(store, "c", Since(epoch, 6)))
        assert result.recovered and result.position == Position(epoch, 10)
        assert [(p.seq, p.payload) for p in result.missed] == [(i, f'{{"i":{i}}}') for i in (7, 8, 9, 10)]

    def test_up_to_date(self, store: MemoryHistory) -> None:
        epoch = self.fill(store, 4)
        assert run(recover(store, "c", Since(epoch, 4))) == Recovery(True, Position(epoch, 4))

    def test_future_seq(self, store: MemoryHistory) -> None:
        epoch = self.fill(store, 4)
        assert run(recover(store, "c", Since(epoch, 5))) == Recovery(False, Position(epoch, 4))

    def test_epoch_change(self, store: MemoryHistory) -> None:
        epoch = self.fill(store, 4)
        store.flush()
        result = run(recover(store, "c", Since(epoch, 2)))
        assert not result.recovered and result.position.epoch != epoch and result.position.seq == 0

    def test_older_than_retained(self, store: MemoryHistory) -> None:
        epoch = self.fill(store, 20, size=5)
        assert not run(recover(store, "c", Since(epoch, 14))).recovered
        assert run(recover(store, "c", Since(epoch, 15))).recovered

    def test_expired_history(self, store: MemoryHistory, clock: FakeClock) -> None:
        epoch = self.fill(store, 3)
        clock.advance(61)
        assert not run(recover(store, "c", Since(epoch, 1))).recovered
