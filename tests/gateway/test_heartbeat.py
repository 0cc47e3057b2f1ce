"""Heartbeat state machine: ping schedule, pong RTT, timeouts, misses, quality (explicit times)."""

from __future__ import annotations

import pytest

from realtime_project.gateway.clock import FakeClock, now_ms
from realtime_project.gateway.heartbeat import GOOD_RTT, POOR_RTT, RTT_ALPHA, Action, Heartbeat, Quality

T0 = 1_000.0


def hb(interval: float = 25.0, timeout: float = 10.0) -> Heartbeat:
    return Heartbeat(interval=interval, timeout=timeout, started_at=T0)


class TestSchedule:
    @pytest.mark.parametrize(("interval", "timeout"), [(0, 1), (1, 0), (-1, 1), (1, -1)])
    def test_non_positive_settings_are_rejected(self, interval: float, timeout: float) -> None:
        with pytest.raises(ValueError, match="must be positive"):
            Heartbeat(interval=interval, timeout=timeout, started_at=T0)

    def test_first_ping_after_one_interval(self) -> None:
        h = hb()
        assert h.next_ping_at == T0 + 25
        assert h.poll(T0) == (Action.NONE, None)
        assert h.poll(T0 + 24.999) == (Action.NONE, None)
        assert h.poll(T0 + 25) == (Action.PING, "s1")
        assert h.outstanding == {"s1": T0 + 25}

    def test_pings_every_interval_when_answered(self) -> None:
        h = hb()
        now = T0
        ids = []
        for _ in range(5):
            now += 25
            action, ping_id = h.poll(now)
            assert action is Action.PING
            ids.append(ping_id)
            assert h.poll(now + 0.1) == (Action.NONE, None)  # not twice per interval
            assert h.pong(ping_id, now + 0.05)
        assert ids == ["s1", "s2", "s3", "s4", "s5"]
        assert h.answered == 5 and h.missed == 0 and not h.outstanding

    def test_next_ping_counts_from_the_late_poll(self) -> None:
        # A loop that polled late (a stall) pings once, then schedules from that moment.
        h = hb()
        assert h.poll(T0 + 100)[0] is Action.PING
        assert h.next_ping_at == T0 + 125
        assert h.poll(T0 + 105) == (Action.NONE, None)
        assert h.poll(T0 + 110) == (Action.CLOSE, None)


class TestPong:
    def test_rtt_of_first_sample(self) -> None:
        h = hb()
        _, ping_id = h.poll(T0 + 25)
        assert h.pong(ping_id, T0 + 25.2) is True
        assert h.rtt == pytest.approx(0.2)
        assert h.answered == 1

    def test_rtt_is_smoothed(self) -> None:
        h = hb()
        samples = [0.1, 0.5, 0.3, 0.9]
        expected: float | None = None
        now = T0
        for sample in samples:
            now += 25
            _, ping_id = h.poll(now)
            h.pong(ping_id, now + sample)
            expected = sample if expected is None else (1 - RTT_ALPHA) * expected + RTT_ALPHA * sample
            assert h.rtt == pytest.approx(expected)

    def test_negative_elapsed_counts_as_zero(self) -> None:
        h = hb()
        _, ping_id = h.poll(T0 + 25)
        assert h.pong(ping_id, T0 + 20)
        assert h.rtt == 0.0

    @pytest.mark.parametrize("unknown", ["s99", "s0", "", 1, None, ["s1"], {"id": "s1"}])
    def test_unknown_ids_are_ignored(self, unknown: object) -> None:
        h = hb()
        h.poll(T0 + 25)
        assert h.pong(unknown, T0 + 26) is False
        assert h.rtt is None and h.answered == 0
        assert list(h.outstanding) == ["s1"]

    def test_duplicate_pong_is_ignored(self) -> None:
        h = hb()
        _, ping_id = h.poll(T0 + 25)
        assert h.pong(ping_id, T0 + 25.1)
        assert h.pong(ping_id, T0 + 30) is False
        assert h.rtt == pytest.approx(0.1) and h.answered == 1

    def test_answer_to_newer_ping_settles_older_ones(self) -> None:
        h = hb(interval=5, timeout=30)
        _, first = h.poll(T0 + 5)
        _, second = h.poll(T0 + 10)
        _, third = h.poll(T0 + 15)
        assert (first, second, third) == ("s1", "s2", "s3")
        assert h.pong(second, T0 + 10.5)
        assert list(h.outstanding) == ["s3"]
        assert h.pong(first, T0 + 11) is False  # already settled
        assert h.rtt == pytest.approx(0.5)

    def test_pong_before_poll_does_nothing(self) -> None:
        h = hb()
        assert h.pong("s1", T0 + 1) is False


class TestTimeout:
    def test_unanswered_ping_closes_after_timeout(self) -> None:
        h = hb()
        h.poll(T0 + 25)
        assert h.poll(T0 + 34.999) == (Action.NONE, None)
        assert h.poll(T0 + 35) == (Action.CLOSE, None)
        # It stays closed: every later poll says close.
        assert h.poll(T0 + 60) == (Action.CLOSE, None)

    def test_answered_ping_does_not_time_out(self) -> None:
        h = hb()
        _, ping_id = h.poll(T0 + 25)
        h.pong(ping_id, T0 + 34)
        assert h.poll(T0 + 36) == (Action.NONE, None)
        assert h.poll(T0 + 50)[0] is Action.PING

    def test_timeout_is_checked_before_the_next_ping(self) -> None:
        h = hb(interval=10, timeout=10)
        h.poll(T0 + 10)
        # At T0+20 the old ping times out and a new one would be due: close wins.
        assert h.poll(T0 + 20) == (Action.CLOSE, None)

    def test_timeout_counts_from_the_oldest_unanswered_ping(self) -> None:
        h = hb(interval=5, timeout=12)
        h.poll(T0 + 5)  # s1
        h.poll(T0 + 10)  # s2 (s1 missed)
        assert h.poll(T0 + 15) == (Action.PING, "s3")
        assert h.poll(T0 + 16.9) == (Action.NONE, None)
        assert h.poll(T0 + 17) == (Action.CLOSE, None)

    def test_late_pong_after_timeout_but_before_poll_keeps_the_link(self) -> None:
        h = hb()
        _, ping_id = h.poll(T0 + 25)
        assert h.pong(ping_id, T0 + 36)
        assert h.poll(T0 + 36) == (Action.NONE, None)


class TestMissesAndQuality:
    def test_miss_is_counted_when_the_next_ping_is_due(self) -> None:
        h = hb(interval=5, timeout=60)
        h.poll(T0 + 5)
        assert h.missed == 0
        h.poll(T0 + 10)
        assert h.missed == 1
        h.poll(T0 + 15)
        assert h.missed == 2
        assert list(h.outstanding) == ["s1", "s2", "s3"]

    def test_quality_good_without_samples(self) -> None:
        assert hb().quality is Quality.GOOD

    @pytest.mark.parametrize(
        ("rtt", "quality"),
        [
            (0.0, Quality.GOOD),
            (GOOD_RTT, Quality.GOOD),
            (GOOD_RTT + 0.001, Quality.DEGRADED),
            (POOR_RTT, Quality.DEGRADED),
            (POOR_RTT + 0.001, Quality.POOR),
            (30.0, Quality.POOR),
        ],
    )
    def test_quality_from_rtt(self, rtt: float, quality: Quality) -> None:
        h = hb()
        _, ping_id = h.poll(T0 + 25)
        h.pong(ping_id, T0 + 25 + rtt)
        assert h.rtt == pytest.approx(rtt)
        assert h.quality is quality

    def test_quality_from_misses(self) -> None:
        h = hb(interval=5, timeout=60)
        h.poll(T0 + 5)
        h.poll(T0 + 10)
        assert h.missed == 1 and h.quality is Quality.DEGRADED
        _, ping_id = h.poll(T0 + 15)
        assert h.missed == 2 and h.quality is Quality.POOR
        # A fast answer does not hide the misses.
        h.pong(ping_id, T0 + 15.01)
        assert h.rtt == pytest.approx(0.01)
        assert h.quality is Quality.POOR

    def test_one_miss_with_poor_rtt_is_poor(self) -> None:
        h = hb(interval=5, timeout=60)
        h.poll(T0 + 5)
        _, ping_id = h.poll(T0 + 10)
        h.pong(ping_id, T0 + 12)
        assert h.missed == 1 and h.quality is Quality.POOR

    def test_quality_values_are_protocol_strings(self) -> None:
        assert [q.value for q in Quality] == ["good", "degraded", "poor"]


class TestFakeClock:
    def test_advance_moves_both_readings(self) -> None:
        clock = FakeClock(start=5.0, wall=1_764_100_000.0)
        clock.advance(2.5)
        assert clock.monotonic() == 7.5
        assert clock.time() == 1_764_100_002.5
        assert now_ms(clock) == 1_764_100_002_500

    def test_heartbeat_driven_by_fake_clock(self) -> None:
        clock = FakeClock()
        h = Heartbeat(interval=25, timeout=10, started_at=clock.monotonic())
        clock.advance(25)
        action, ping_id = h.poll(clock.monotonic())
        assert action is Action.PING
        clock.advance(0.08)
        assert h.pong(ping_id, clock.monotonic())
        assert h.rtt == pytest.approx(0.08)
        assert h.quality is Quality.GOOD


def test_first_ping_after_can_be_drawn_per_connection() -> None:
    hb = Heartbeat(25, 10, started_at=100.0, first_ping_after=13.0)
    assert hb.poll(112.9) == (Action.NONE, None)
    action, ping_id = hb.poll(113.0)
    assert action is Action.PING
    assert hb.pong(ping_id, 113.1)
    assert hb.poll(137.9)[0] is Action.NONE  # then every interval
    assert hb.poll(138.0)[0] is Action.PING
