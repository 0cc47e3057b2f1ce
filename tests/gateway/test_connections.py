"""Connection send queue, writer and close semantics; ConnectionManager registry.

The transport is a recording fake of the consumer's two coroutines (`send_text`,
`close_transport`), so the tests see exactly what would reach the socket and in which order.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from prometheus_client import REGISTRY

from realtime_project.gateway import connections
from realtime_project.gateway.connections import Connection, ConnectionManager, ConnectionState
from realtime_project.gateway.errors import CloseCode
from realtime_project.gateway.heartbeat import Heartbeat
from realtime_project.gateway.namespaces import ANONYMOUS, Principal
from realtime_project.gateway.ratelimit import TokenBucket


class Transport:
    """Records what the writer sends; `block_send`/`block_close` make a call never complete."""

    def __init__(self, *, block_send_after: int | None = None, block_close: bool = False) -> None:
        self.events: list[tuple[str, Any]] = []
        self.block_send_after = block_send_after
        self.block_close = block_close
        self.sending = asyncio.Event()  # set while a send is stuck

    async def send_text(self, text: str) -> None:
        if self.block_send_after is not None and len(self.sent) >= self.block_send_after:
            self.sending.set()
            await asyncio.get_running_loop().create_future()  # a paused transport: never completes
        self.events.append(("send", text))

    async def close(self, code: int) -> None:
        if self.block_close:
            await asyncio.get_running_loop().create_future()
        self.events.append(("close", code))

    @property
    def sent(self) -> list[str]:
        return [value for kind, value in self.events if kind == "send"]

    @property
    def closes(self) -> list[int]:
        return [value for kind, value in self.events if kind == "close"]


def make_connection(
    transport: Transport, *, queue_limit: int = 100, principal: Principal = ANONYMOUS, conn_id: str = ""
) -> Connection:
    return Connection(
        send_text=transport.send_text,
        close_transport=transport.close,
        heartbeat=Heartbeat(25, 10, started_at=50.0),
        bucket=TokenBucket.full(20, 40, 50.0),
        queue_limit=queue_limit,
        connected_at=50.0,
        id=conn_id,
        principal=principal,
    )


async def settle() -> None:
    """Let the writer tasks run until they wait again."""
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.fixture
def fast_close(monkeypatch: pytest.MonkeyPatch) -> float:
    """Shorten the close timeout (5 s in production) so the timeout path runs in milliseconds."""
    monkeypatch.setattr(connections, "CLOSE_TIMEOUT", 0.05)
    return 0.05


class TestConnectionBasics:
    def test_ids_are_unique_and_explicit_ids_kept(self) -> None:
        t = Transport()
        a, b = make_connection(t), make_connection(t)
        assert a.id != b.id and a.id.startswith("c") and b.id.startswith("c")
        assert make_connection(t, conn_id="mine").id == "mine"

    def test_initial_state(self) -> None:
        conn = make_connection(Transport(), principal=Principal(9))
        assert conn.last_seen == conn.connected_at == 50.0
        assert conn.user_id == 9
        assert not conn.closing and conn.close_code is None and conn.queued == 0
        assert conn.rtt is None

    def test_hashable_by_identity(self) -> None:
        t = Transport()
        a, b = make_connection(t, conn_id="x"), make_connection(t, conn_id="x")
        assert a != b and len({a, b}) == 2

    def test_info(self) -> None:
        conn = make_connection(Transport(), principal=Principal(3), conn_id="c-info")
        _, ping_id = conn.heartbeat.poll(75.0)
        conn.heartbeat.pong(ping_id, 75.1234)
        conn.enqueue("x")
        assert conn.info() == {
            "id": "c-info",
            "user": 3,
            "channels": [],
            "connected_at": 50.0,
            "last_seen": 50.0,
            "rtt_ms": 123.4,
            "missed_pongs": 0,
            "quality": "good",
            "queued": 1,
        }


class TestSendQueue:
    async def test_order_is_preserved(self) -> None:
        t = Transport()
        conn = make_connection(t, queue_limit=1000)
        early = [f"early {i}" for i in range(50)]
        for text in early:
            assert conn.enqueue(text)
        conn.start()
        late = []
        for i in range(200):
            late.append(f"late {i}")
            conn.enqueue(late[-1])
            if i % 7 == 0:
                await asyncio.sleep(0)
        conn.close(CloseCode.NORMAL)
        await conn.wait_closed(2)
        assert t.sent == early + late
        assert t.events[-1] == ("close", 1000)
        assert conn.frames_out == 250

    async def test_writer_sleeps_when_idle_and_wakes_on_enqueue(self) -> None:
        t = Transport()
        conn = make_connection(t)
        conn.start()
        await settle()
        assert t.events == []
        conn.enqueue("one")
        await settle()
        assert t.sent == ["one"]
        conn.enqueue("two")
        conn.enqueue("three")
        await settle()
        assert t.sent == ["one", "two", "three"]
        conn.stop()

    async def test_close_after_queued_frames_are_flushed(self) -> None:
        t = Transport()
        conn = make_connection(t)
        for text in ("a", "b", "c"):
            conn.enqueue(text)
        conn.close(CloseCode.SERVICE_RESTART)
        assert conn.closing and conn.close_code == 1012
        conn.start()
        await conn.wait_closed(2)
        assert t.events == [("send", "a"), ("send", "b"), ("send", "c"), ("close", 1012)]
        assert conn.queued == 0

    async def test_close_while_the_writer_waits(self) -> None:
        t = Transport()
        conn = make_connection(t)
        conn.start()
        conn.enqueue("bye")
        await settle()
        conn.close(CloseCode.HEARTBEAT_TIMEOUT)
        await conn.wait_closed(2)
        assert t.events == [("send", "bye"), ("close", 4408)]

    async def test_close_is_idempotent_first_code_wins(self) -> None:
        t = Transport()
        conn = make_connection(t)
        conn.close(CloseCode.RATE_LIMITED)
        conn.close(CloseCode.NORMAL)
        assert conn.close_code == 4429 and conn.queued == 1
        conn.start()
        await conn.wait_closed(2)
        assert t.closes == [4429]

    async def test_enqueue_after_close_is_refused(self) -> None:
        t = Transport()
        conn = make_connection(t)
        conn.enqueue("kept")
        conn.close(CloseCode.NORMAL)
        assert conn.enqueue("refused") is False
        assert conn.queued == 2  # "kept" and the close marker
        conn.start()
        await conn.wait_closed(2)
        assert t.sent == ["kept"]
        assert conn.enqueue("after the writer ended") is False
        assert t.sent == ["kept"]

    async def test_overflow_closes_4409_and_clears_the_queue(self, caplog: pytest.LogCaptureFixture) -> None:
        t = Transport()
        conn = make_connection(t, queue_limit=3)
        assert all(conn.enqueue(f"f{i}") for i in range(3))
        with caplog.at_level(logging.WARNING, logger="realtime.gateway"):
            assert conn.enqueue("one too many") is False
        assert conn.close_code == CloseCode.SLOW_CONSUMER == 4409
        assert conn.queued == 1  # only the close marker is left
        assert "slow consumer" in caplog.text
        assert conn.enqueue("later") is False
        conn.start()
        await conn.wait_closed(2)
        assert t.events == [("close", 4409)]  # the stale frames were dropped, the client resyncs

    async def test_a_slow_consumer_counts_once_and_every_dropped_delivery(self) -> None:
        def sample(name: str) -> float:
            return REGISTRY.get_sample_value(name) or 0.0

        consumers, dropped = sample("realtime_slow_consumers_total"), sample("realtime_dropped_deliveries_total")
        conn = make_connection(Transport(), queue_limit=3)
        for i in range(3):
            conn.enqueue(f"f{i}")
        for i in range(5):  # the overflowing frame, then four more for the closed consumer
            assert conn.enqueue(f"late{i}") is False
        other = make_connection(Transport())
        other.close(CloseCode.NORMAL)
        assert other.enqueue("not a slow consumer") is False  # refused, but dropped by no one slow
        assert sample("realtime_slow_consumers_total") == consumers + 1
        assert sample("realtime_dropped_deliveries_total") == dropped + 3 + 5

    async def test_queue_limit_counts_unsent_frames_only(self) -> None:
        t = Transport()
        conn = make_connection(t, queue_limit=2)
        conn.start()
        for i in range(20):  # the writer drains between bursts, so the limit is never hit
            assert conn.enqueue(f"a{i}") and conn.enqueue(f"b{i}")
            await settle()
        assert not conn.closing
        assert len(t.sent) == 40
        conn.stop()

    async def test_overflow_while_the_writer_runs(self) -> None:
        t = Transport(block_send_after=1)
        conn = make_connection(t, queue_limit=5)
        conn.start()
        conn.enqueue("first")
        conn.enqueue("second")  # the writer is stuck sending this one
        await asyncio.wait_for(t.sending.wait(), 1)
        results = [conn.enqueue(f"q{i}") for i in range(6)]
        assert results == [True] * 5 + [False]
        assert conn.close_code == 4409
        conn.stop()

    async def test_blocked_send_does_not_block_other_connections(self) -> None:
        stuck_transport = Transport(block_send_after=0)
        stuck = make_connection(stuck_transport)
        others = [Transport() for _ in range(3)]
        healthy = [make_connection(t) for t in others]
        for conn in (stuck, *healthy):
            conn.start()
        stuck.enqueue("never delivered")
        await asyncio.wait_for(stuck_transport.sending.wait(), 1)
        for i in range(100):
            for conn in healthy:
                conn.enqueue(f"m{i}")
            stuck.enqueue(f"m{i}")
            await asyncio.sleep(0)
        for conn in healthy:
            conn.close(CloseCode.NORMAL)
        await asyncio.wait_for(asyncio.gather(*(c.wait_closed(2) for c in healthy)), 2)
        for t in others:
            assert t.sent == [f"m{i}" for i in range(100)]
            assert t.closes == [1000]
        assert stuck_transport.events == []
        assert stuck.queued == 100
        stuck.stop()

    async def test_close_timeout_abandons_a_paused_transport(
        self, fast_close: float, caplog: pytest.LogCaptureFixture
    ) -> None:
        t = Transport(block_close=True)
        conn = make_connection(t)
        conn.enqueue("last words")
        conn.close(CloseCode.SERVICE_RESTART)
        conn.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with caplog.at_level(logging.INFO, logger="realtime.gateway"):
            await conn.wait_closed(5)
        elapsed = loop.time() - started
        assert fast_close <= elapsed < 1.0  # ended by CLOSE_TIMEOUT, not by wait_closed's 5 s
        assert conn._writer is None  # the writer finished by itself (not cancelled)
        assert t.sent == ["last words"] and t.closes == []
        assert "close not flushed" in caplog.text

    async def test_wait_closed_gives_up_after_its_timeout_without_killing_the_writer(self) -> None:
        t = Transport(block_send_after=0)
        conn = make_connection(t)
        conn.enqueue("stuck")
        conn.start()
        await conn.wait_closed(0.02)
        writer = conn._writer
        assert writer is not None and not writer.done()  # still running after wait_closed gave up
        conn.stop()
        await settle()
        assert writer.cancelled()

    async def test_wait_closed_without_writer_returns(self) -> None:
        conn = make_connection(Transport())
        await asyncio.wait_for(conn.wait_closed(10), 0.5)

    async def test_send_failure_ends_the_writer_quietly(self) -> None:
        sent: list[str] = []

        async def failing_send(text: str) -> None:
            if text == "boom":
                raise ConnectionResetError("peer went away")
            sent.append(text)

        async def close(code: int) -> None:
            return None

        conn = Connection(
            send_text=failing_send,
            close_transport=close,
            heartbeat=Heartbeat(25, 10, started_at=0.0),
            bucket=TokenBucket.full(20, 40, 0.0),
            queue_limit=10,
            connected_at=0.0,
        )
        for text in ("ok", "boom", "after"):
            conn.enqueue(text)
        conn.start()
        writer = conn._writer
        await conn.wait_closed(1)
        assert sent == ["ok"] and conn.frames_out == 1
        assert writer is not None and writer.done() and writer.exception() is None
        assert conn._writer is None

    async def test_idle_connection_has_no_writer_task_and_writes_inline(self) -> None:
        t = Transport()
        conn = make_connection(t)
        conn.start()
        assert conn._writer is None  # no task per connection at rest
        assert conn.enqueue("now") and t.sent == ["now"]  # written synchronously, no await
        assert conn._writer is None and conn.frames_out == 1

    async def test_stop_cancels_the_writer(self) -> None:
        t = Transport(block_send_after=0)
        conn = make_connection(t)
        conn.start()
        conn.enqueue("stuck")
        writer = conn._writer
        assert writer is not None
        conn.stop()
        await settle()
        assert writer.cancelled()
        conn.stop()  # idempotent

    async def test_slow_consumer_with_a_paused_transport_is_closed(self, fast_close: float) -> None:
        t = Transport(block_send_after=0)
        conn = make_connection(t, queue_limit=3)
        conn.start()
        conn.enqueue("in flight")
        await asyncio.wait_for(t.sending.wait(), 1)
        for i in range(4):
            conn.enqueue(f"q{i}")
        assert conn.close_code == 4409
        try:
            await conn.wait_closed(0.5)
            assert conn._writer is not None and conn._writer.done()
        finally:
            conn.stop()


class TestConnectionState:
    """The lifecycle moves forward only, through `_set_state`, which logs each move."""

    async def test_an_ordinary_life_is_logged(self, caplog: pytest.LogCaptureFixture) -> None:
        t = Transport()
        conn = make_connection(t, conn_id="c-life")
        with caplog.at_level(logging.DEBUG, logger="realtime.gateway"):
            assert conn.state is ConnectionState.CONNECTING and not conn.closing
            conn.start()
            assert conn.state is ConnectionState.OPEN and not conn.closing
            conn.close(CloseCode.NORMAL)
            assert conn.state is ConnectionState.CLOSING and conn.closing
            await conn.wait_closed(2)
            assert conn.state is ConnectionState.CLOSED and t.closes == [1000]
            conn.stop()  # in place: ignored
        moves = [r.getMessage() for r in caplog.records if r.getMessage().startswith("connection c-life:")]
        assert moves == [
            "connection c-life: CONNECTING -> OPEN",
            "connection c-life: OPEN -> CLOSING",
            "connection c-life: CLOSING -> CLOSED",
        ]

    async def test_closed_before_start_stays_closing_until_the_close_is_written(self) -> None:
        t = Transport()
        conn = make_connection(t)
        conn.enqueue("welcome")
        conn.close(CloseCode.UNAUTHENTICATED)
        conn.start()  # CLOSING -> OPEN would be backwards: ignored, but the writer runs
        assert conn.state is ConnectionState.CLOSING
        await conn.wait_closed(2)
        assert conn.state is ConnectionState.CLOSED
        assert t.events == [("send", "welcome"), ("close", 4401)]

    async def test_a_stopped_connection_takes_no_frames_and_no_close(self) -> None:
        t = Transport()
        conn = make_connection(t)
        conn.start()
        conn.stop()  # the peer went away
        assert conn.state is ConnectionState.CLOSED and conn.closing and conn.close_code is None
        assert conn.enqueue("too late") is False
        conn.close(CloseCode.NORMAL)
        await settle()
        assert t.events == [] and conn.close_code is None

    async def test_a_stuck_close_abandons_the_socket(self, fast_close: float) -> None:
        t = Transport(block_send_after=0)
        conn = make_connection(t)
        aborted: list[bool] = []
        conn.abort = lambda: aborted.append(True)
        conn.start()
        conn.enqueue("stuck")
        await asyncio.wait_for(t.sending.wait(), 1)
        conn.close(CloseCode.SERVICE_RESTART)
        assert conn.state is ConnectionState.CLOSING
        await asyncio.sleep(fast_close * 4)
        assert conn.state is ConnectionState.CLOSED and aborted == [True]


class TestConnectionManager:
    def test_add_get_remove(self) -> None:
        t = Transport()
        manager = ConnectionManager()
        anon = make_connection(t)
        alice = make_connection(t, principal=Principal(1))
        manager.add(anon)
        manager.add(alice)
        assert len(manager) == 2
        assert manager.get(anon.id) is anon and manager.get("nope") is None
        assert set(manager) == {anon, alice}
        assert manager.users() == [1] and manager.user_count == 1
        assert manager.connections_of(1) == {alice}
        assert manager.connections_of(2) == set()
        manager.remove(alice)
        assert manager.users() == [] and manager.user_count == 0 and len(manager) == 1
        manager.remove(alice)  # idempotent
        manager.remove(anon)
        assert len(manager) == 0

    def test_several_connections_per_user(self) -> None:
        t = Transport()
        manager = ConnectionManager()
        tabs = [make_connection(t, principal=Principal(7)) for _ in range(3)]
        for conn in tabs:
            manager.add(conn)
        assert manager.connections_of(7) == set(tabs)
        manager.remove(tabs[0])
        assert manager.connections_of(7) == set(tabs[1:])
        assert manager.user_count == 1

    def test_connections_of_returns_a_copy(self) -> None:
        manager = ConnectionManager()
        conn = make_connection(Transport(), principal=Principal(4))
        manager.add(conn)
        snapshot = manager.connections_of(4)
        snapshot.clear()
        assert manager.connections_of(4) == {conn}

    def test_iteration_is_a_snapshot(self) -> None:
        manager = ConnectionManager()
        conns = [make_connection(Transport()) for _ in range(5)]
        for conn in conns:
            manager.add(conn)
        for conn in manager:  # removing while iterating is safe
            manager.remove(conn)
        assert len(manager) == 0

    def test_associate_user(self) -> None:
        manager = ConnectionManager()
        conn = make_connection(Transport())
        manager.add(conn)
        assert manager.associate_user(conn, Principal(5)) == (None, 5)
        assert conn.principal == Principal(5) and manager.connections_of(5) == {conn}
        assert manager.associate_user(conn, Principal(6, is_staff=True)) == (5, 6)
        assert manager.connections_of(5) == set() and manager.connections_of(6) == {conn}
        assert manager.users() == [6]
        assert manager.associate_user(conn, ANONYMOUS) == (6, None)
        assert manager.users() == [] and len(manager) == 1

    def test_associate_user_of_an_unregistered_connection(self) -> None:
        manager = ConnectionManager()
        conn = make_connection(Transport())
        assert manager.associate_user(conn, Principal(5)) == (None, 5)
        assert conn.user_id == 5
        assert manager.connections_of(5) == set() and len(manager) == 0

    def test_remove_after_user_change(self) -> None:
        manager = ConnectionManager()
        conn = make_connection(Transport(), principal=Principal(1))
        manager.add(conn)
        manager.associate_user(conn, Principal(2))
        manager.remove(conn)
        assert manager.users() == [] and len(manager) == 0
