"""Heartbeat state machine: ping schedule, pong RTT, timeouts, misses, quality (explicit times)."""

from __future__ import annotations

import asyncio

import pytest

from realtime_project.clock import now_ms
from realtime_project.gateway.heartbeat import GOOD_RTT, POOR_RTT, RTT_ALPHA, Action, Heartbeat, Quality
from tests.support.clock import FakeClock

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


class TestDueAt:
    def test_first_due_is_the_first_ping(self) -> None:
        assert hb().due_at() == T0 + 25

    def test_an_unanswered_ping_is_due_at_its_timeout_before_the_next_ping(self) -> None:
        h = hb(interval=25, timeout=10)
        h.poll(T0 + 25)
        assert h.due_at() == T0 + 35
        assert h.poll(h.due_at()) == (Action.CLOSE, None)

    def test_an_answered_ping_is_due_at_the_next_ping(self) -> None:
        h = hb(interval=25, timeout=10)
        _, ping_id = h.poll(T0 + 25)
        h.pong(ping_id, T0 + 26)
        assert h.due_at() == T0 + 50

    def test_nothing_happens_before_due_at(self) -> None:
        h = hb(interval=5, timeout=12)
        for _ in range(6):
            due = h.due_at()
            assert h.poll(due - 0.001) == (Action.NONE, None)
            assert h.poll(due)[0] is not Action.NONE


class TestWheel:
    """`HeartbeatWheel` files connections by due tick; a check visits only those due."""

    def test_a_connection_is_returned_once_and_never_before_its_time(self) -> None:
        from realtime_project.gateway.hub.loops import HeartbeatWheel

        wheel = HeartbeatWheel(0.25)
        a, b, c = object(), object(), object()
        wheel.file(a, 10.0)  # type: ignore[arg-type]
        wheel.file(b, 10.1)  # type: ignore[arg-type]
        wheel.file(c, 12.0)  # type: ignore[arg-type]
        assert wheel.due(9.99) == []
        assert wheel.due(10.0) == [a]
        assert wheel.due(10.2) == []  # b's slot starts at 10.25
        assert wheel.due(11.0) == [b]
        assert len(wheel) == 1
        assert wheel.due(100.0) == [c]
        assert wheel.due(100.0) == [] and len(wheel) == 0


class TestHubChecks:
    """The hub pings and times out through the wheel, with an injected clock."""

    async def test_only_due_connections_are_visited_and_each_is_pinged_on_time(self) -> None:
        from realtime_project.gateway import conf
        from realtime_project.gateway.connections import Connection
        from realtime_project.gateway.history import MemoryHistory
        from realtime_project.gateway.hub import Hub
        from realtime_project.gateway.hub.loops import HeartbeatWheel
        from realtime_project.gateway.ratelimit import TokenBucket

        clock = FakeClock(start=T0)
        settings = conf.GatewaySettings(**{**conf.gateway_settings().__dict__, "heartbeat_interval": 5.0})
        hub = Hub(layer=None, history=MemoryHistory(clock), settings=settings, clock=clock)
        sent: dict[str, list[str]] = {}
        visits: list[str] = []

        class CountingWheel(HeartbeatWheel):
            def due(self, now: float) -> list[Connection]:
                out = super().due(now)
                visits.extend(c.id for c in out)
                return out

        hub.heartbeats = CountingWheel(hub.heartbeats.tick)

        def connection(first_ping_after: float) -> Connection:
            async def send_text(text: str) -> None:
                sent[conn.id].append(text)

            async def close(code: int) -> None:
                sent[conn.id].append(f"close {code}")

            conn = Connection(
                send_text=send_text,
                close_transport=close,
                heartbeat=Heartbeat(5.0, 3.0, started_at=T0, first_ping_after=first_ping_after),
                bucket=TokenBucket.full(20, 40, T0),
                queue_limit=100,
                connected_at=T0,
            )
            sent[conn.id] = []
            return conn

        conns = [connection(2.5 + i * 0.5) for i in range(6)]  # first pings at +2.5 .. +5.0
        for conn in conns:
            await hub.add_connection(conn)
        gone = conns.pop()
        await hub.remove_connection(gone)
        for _ in range(int(4.0 / 0.25)):  # 4 s of ticks
            clock.advance(0.25)
            hub.check_heartbeats()
            for i, conn in enumerate(conns):
                pinged = any('"ping"' in text for text in sent[conn.id])
                assert pinged == (clock.monotonic() >= T0 + 2.5 + i * 0.5), (i, clock.monotonic())
        assert sent[gone.id] == []
        # Four pings were due in those 4 s (at +2.5, +3, +3.5, +4): four visits, where a
        # pass over every connection at every tick would have made 16 x 6.
        assert visits == [c.id for c in conns[:4]]
        # One answer keeps a connection open; silence closes the others at their timeout.
        answered = conns[0]
        ping_id = answered.heartbeat.outstanding and next(iter(answered.heartbeat.outstanding))
        assert answered.heartbeat.pong(ping_id, clock.monotonic())
        for _ in range(int(4.0 / 0.25)):
            clock.advance(0.25)
            hub.check_heartbeats()
        assert not answered.closing
        assert [c.close_code for c in conns[1:]] == [4408] * 4
        # Closed connections are filed no more: only the open one is left on the wheel.
        assert len(hub.heartbeats) == 1
        await asyncio.sleep(0)
