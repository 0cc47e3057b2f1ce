"""Conflation: at most max_rate frames per second, newest wins, the last is never lost (explicit times)."""

from __future__ import annotations

import itertools

import pytest

from realtime_project.gateway.conflation import Conflator

T0 = 100.0


def test_interval() -> None:
    assert Conflator(4).interval == 0.25
    assert Conflator(0.5).interval == 2.0


def test_first_frame_goes_at_once() -> None:
    c = Conflator(2)
    assert c.offer("a", T0) == "a"
    assert c.last_sent == T0 and c.pending is None


def test_frames_within_the_interval_are_held_newest_wins() -> None:
    c = Conflator(2)
    c.offer("a", T0)
    assert c.offer("b", T0 + 0.1) is None
    assert c.offer("c", T0 + 0.2) is None
    assert c.offer("d", T0 + 0.3) is None
    assert c.pending == "d"
    assert c.due_at == pytest.approx(T0 + 0.5)


def test_flush_before_due_keeps_the_frame() -> None:
    c = Conflator(2)
    c.offer("a", T0)
    c.offer("b", T0 + 0.1)
    assert c.flush(T0 + 0.49) is None
    assert c.pending == "b"


def test_flush_when_due_sends_the_newest_and_restarts_the_interval() -> None:
    c = Conflator(2)
    c.offer("a", T0)
    c.offer("b", T0 + 0.1)
    c.offer("c", T0 + 0.2)
    assert c.flush(c.due_at) == "c"
    assert c.pending is None
    assert c.last_sent == pytest.approx(T0 + 0.5)
    assert c.due_at == pytest.approx(T0 + 1.0)


def test_flush_with_nothing_pending() -> None:
    c = Conflator(2)
    assert c.flush(T0) is None
    c.offer("a", T0)
    assert c.flush(T0 + 10) is None


def test_late_flush_sends_and_counts_from_the_flush() -> None:
    c = Conflator(1)
    c.offer("a", T0)
    c.offer("b", T0 + 0.5)
    assert c.flush(T0 + 3) == "b"
    assert c.due_at == T0 + 4
    assert c.offer("c", T0 + 3.5) is None


def test_frame_after_the_interval_goes_at_once() -> None:
    c = Conflator(8)  # interval 0.125 s: binary-exact times
    c.offer("a", T0)
    assert c.offer("b", T0 + 0.125) == "b"
    assert c.offer("c", T0 + 0.5) == "c"


def test_held_frame_blocks_direct_sending_until_flushed() -> None:
    # Even after the interval, a newer frame replaces the held one (order is kept:
    # the held one must not be overtaken), and the timer's flush sends it.
    c = Conflator(10)
    c.offer("a", T0)
    c.offer("b", T0 + 0.05)
    assert c.offer("c", T0 + 0.2) is None
    assert c.pending == "c"
    assert c.flush(T0 + 0.2) == "c"


def test_at_most_max_rate_over_a_long_burst_and_last_value_kept() -> None:
    rate = 5.0
    c = Conflator(rate)
    sent: list[tuple[float, str]] = []
    timer: float | None = None
    # 1,000 publications per second for 3 s; a timer fires at due_at as the hub arms it.
    for i in range(3000):
        now = T0 + i / 1000
        if timer is not None and now >= timer:
            out = c.flush(timer)
            if out is not None:
                sent.append((timer, out))
            timer = None
        frame = f"f{i}"
        out = c.offer(frame, now)
        if out is not None:
            sent.append((now, out))
        elif timer is None:
            timer = c.due_at
    assert timer is not None
    out = c.flush(timer)
    assert out is not None
    sent.append((timer, out))
    assert sent[-1][1] == "f2999"  # the last value is never lost
    times = [t for t, _ in sent]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1 / rate - 1e-9
    assert len(sent) <= 3 * rate + 2
    # Values only move forward.
    numbers = [int(f[1:]) for _, f in sent]
    assert numbers == sorted(numbers)


@pytest.mark.parametrize("rate", [3.0, 7.0, 0.3, 1000.0])
def test_flush_exactly_at_due_at_always_sends(rate: float) -> None:
    # due_at is a float sum; flushing at exactly that value must never hold the frame.
    c = Conflator(rate)
    now = T0 + 0.1
    for step in range(200):
        c.offer(f"x{step}", now)
        c.offer(f"y{step}", now + c.interval / 3)
        due = c.due_at
        assert c.flush(due) == f"y{step}"
        now = due + c.interval * 1.7
