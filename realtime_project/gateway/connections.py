"""Connections of this process: state, bounded send queue, and the registry.

A connection writes through two doors, both on `Connection`: `enqueue` (a text frame) and
`send_shared` (a fan-out frame whose bytes were framed once for every subscriber). Both
write at once when the connection is open and idle (nothing queued, no send in flight),
and otherwise queue the frame's text (bounded) behind the send in progress; `close`
queues the close frame behind them. A connection whose queue overflows is a slow
consumer: it is closed with 4409 and recovers on reconnect, and it never slows the others.

Its lifecycle is a `ConnectionState`, changed only by `Connection._set_state` (which logs
each transition), as python-websockets does.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .credentials import Credential
from .direct import DirectWriter, SharedFrame, TransportControl
from .errors import CloseCode
from .heartbeat import Heartbeat
from .metrics import DROPPED_DELIVERIES, SLOW_CONSUMERS
from .namespaces import ANONYMOUS, Principal
from .ratelimit import TokenBucket

if TYPE_CHECKING:
    from .hub import Subscription

logger = logging.getLogger("realtime.gateway")

SendText = Callable[[str], Coroutine[Any, Any, None]]
Close = Callable[[int], Awaitable[None]]

#: How long a close may wait for a paused transport before the connection is abandoned.
CLOSE_TIMEOUT = 5.0

_ids = itertools.count(1)


class ConnectionState(enum.Enum):
    """Where a connection is in its life; it only moves forward (the values' order)."""

    #: Accepted, not yet started by the hub: frames queue (the welcome goes first).
    CONNECTING = 0
    #: Frames are written: at once when idle, else queued behind the send in flight.
    OPEN = 1
    #: A close was asked for (`close_code`): no new frames; those queued, then the close
    #: frame, go out (a slow reader's close frame goes out at once, ahead of its queue).
    CLOSING = 2
    #: The close frame was handed to the transport, the socket was abandoned, or the
    #: connection was stopped (its peer went away): nothing more is written.
    CLOSED = 3


class _CloseMarker:
    __slots__ = ("code",)

    def __init__(self, code: int) -> None:
        self.code = code


@dataclass(eq=False, slots=True)
class Connection:
    """One WebSocket connection as the gateway sees it (hashable by identity)."""

    send_text: SendText
    close_transport: Close
    heartbeat: Heartbeat
    bucket: TokenBucket
    queue_limit: int
    connected_at: float
    id: str = ""
    principal: Principal = ANONYMOUS
    session: str = ""
    last_seen: float = 0.0
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    rejected_streak: int = 0
    state: ConnectionState = ConnectionState.CONNECTING
    #: The code of the close asked for (set with the move to CLOSING); None: none asked.
    close_code: int | None = None
    frames_in: int = 0
    frames_out: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    #: Called when the connection is abandoned (its transport would not take the close):
    #: the consumer ends the ASGI app so the server drops the socket.
    abort: Callable[[], None] | None = None
    #: Straight-to-socket writer for shared fan-out frames (uvicorn without extensions).
    direct: DirectWriter | None = None
    #: Writes a close frame at once and aborts the socket (uvicorn); None: daphne, tests.
    transport: TransportControl | None = None
    #: After a slow consumer's close frame, how long its socket may live (seconds).
    close_grace: float = 2.0
    #: The session or API token a signed-in connection was opened with (credentials.py).
    credential: Credential | None = None
    #: When the principal and credential were last found valid (monotonic).
    validated_at: float = 0.0
    #: The write path. `_writer` is the task finishing a send that could not complete at
    #: once, then draining the queue; None while the connection is idle (no task per
    #: connection at rest). `_sending`: that task is inside a transport send (which a
    #: reader that stopped reading keeps from ever returning).
    _writer: asyncio.Task[None] | None = None
    _sending: bool = False
    #: Frames waiting behind a send in progress; None until the first one (an empty
    #: deque is 760 bytes, and most connections never queue anything).
    _queue: deque[str | _CloseMarker] | None = None

    def __post_init__(self) -> None:
        if not self.id:
            self.id = f"c{next(_ids)}"
        self.last_seen = self.connected_at
        self.validated_at = self.connected_at

    @property
    def user_id(self) -> int | None:
        return self.principal.user_id

    @property
    def closing(self) -> bool:
        """True once a close was asked for or the connection ended: it takes no frames."""
        return self.state.value >= ConnectionState.CLOSING.value

    def _set_state(self, state: ConnectionState) -> None:
        """The one place the state changes; moves backwards or in place are ignored."""
        if state.value <= self.state.value:
            return
        logger.debug("connection %s: %s -> %s", self.id, self.state.name, state.name)
        self.state = state

    @property
    def rtt(self) -> float | None:
        return self.heartbeat.rtt

    def start(self) -> None:
        """Begin writing (frames queued before the handshake completed go out first;
        a close asked for meanwhile goes out after them)."""
        self._set_state(ConnectionState.OPEN)
        if self._queue and self._writer is None:
            self._spawn(self._drain())

    def enqueue(self, text: str) -> bool:
        """Send a frame now if the connection is open and idle, else queue it (bounded).

        Returns False when the connection takes no more frames (closing or closed), and
        on overflow, which closes it with 4409.
        """
        state = self.state
        if state is ConnectionState.OPEN and self._writer is None and not self._queue:
            return self._send_now(text)
        if state is ConnectionState.CLOSING or state is ConnectionState.CLOSED:
            if self.close_code == CloseCode.SLOW_CONSUMER:
                DROPPED_DELIVERIES.inc()
            return False
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        if len(queue) >= self.queue_limit:
            logger.warning("slow consumer %s: send queue full (%d frames), closing", self.id, self.queue_limit)
            SLOW_CONSUMERS.inc()
            DROPPED_DELIVERIES.inc(len(queue) + 1)  # what it held, and this frame
            queue.clear()  # the close frame goes ahead of nothing the gateway held
            self.close(CloseCode.SLOW_CONSUMER)
            return False
        queue.append(text)
        return True

    def send_shared(self, frame: SharedFrame) -> bool:
        """Fan-out delivery: the frame's bytes (framed once for every subscriber) go
        straight to the socket when the connection is open and idle and the server lets
        us write them (`direct`: uvicorn); otherwise its text goes through `enqueue`."""
        direct = self.direct
        if (
            direct is not None
            and self.state is ConnectionState.OPEN
            and self._writer is None
            and not self._queue
            and direct.write_frame(frame)
        ):
            self.frames_out += 1
            return True
        return self.enqueue(frame.text)

    def _send_now(self, text: str) -> bool:
        """The fan-out hot path: run the transport's send synchronously.

        An ASGI send that can write at once (uvicorn when the socket is writable)
        completes without suspending, so no task, queue hop or wake-up is paid per
        delivery. Only a send that must wait (paused transport) is finished by a task,
        and frames behind it queue up.
        """
        coro = self.send_text(text)
        try:
            pending = coro.send(None)
        except StopIteration:
            self.frames_out += 1
            return True
        except Exception:  # the peer went away: the consumer's disconnect cleans up
            logger.debug("connection %s: send failed", self.id, exc_info=True)
            return False
        self._spawn(self._finish(coro, pending))
        return True

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._writer = asyncio.get_running_loop().create_task(coro, name=f"ws-writer-{self.id}")

    async def _finish(self, coro: Coroutine[Any, Any, None], pending: Any) -> None:
        """Drive a suspended send to completion (as a Task would), then drain the queue."""
        self._sending = True
        try:
            while True:
                if pending is None:
                    await asyncio.sleep(0)
                else:
                    await asyncio.wait({pending})
                try:
                    pending = coro.send(None)
                except StopIteration:
                    break
            self.frames_out += 1
        except asyncio.CancelledError:
            coro.close()
            raise
        except Exception:
            logger.debug("connection %s: send failed", self.id, exc_info=True)
            self._writer = None
            return
        finally:
            self._sending = False
        await self._drain()

    def close(self, code: int) -> None:
        """Close after the frames already queued are flushed (idempotent)."""
        if self.closing:
            return
        started = self.state is ConnectionState.OPEN  # else `start` writes the close
        self.close_code = int(code)
        self._set_state(ConnectionState.CLOSING)
        if code == CloseCode.SLOW_CONSUMER and self._sending and self.transport is not None:
            self._drop_slow_reader(int(code))
            return
        if self._queue is None:
            self._queue = deque()
        self._queue.append(_CloseMarker(int(code)))
        if self._writer is None and started:
            self._spawn(self._drain())
        if self._sending:
            # A send is in flight and may never finish (a paused transport is what fills
            # the queue of a slow consumer): give it CLOSE_TIMEOUT, then abandon the socket.
            asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self._abandon_if_stuck)

    def _drop_slow_reader(self, code: int) -> None:
        """A reader that stopped reading: its send is stuck behind a full socket. Cancel it,
        write the close frame now (nothing queued goes before it), end the app, and abort
        the socket after `close_grace` if the peer has not taken the close by then."""
        if self._queue:
            self._queue.clear()
        writer = self._writer
        if writer is not None and not writer.done():
            writer.cancel()
        transport = self.transport
        assert transport is not None
        self._set_state(ConnectionState.CLOSED)
        transport.close_now(code)
        asyncio.get_running_loop().call_later(self.close_grace, transport.abort)
        if self.abort is not None:
            self.abort()

    def _abandon_if_stuck(self) -> None:
        writer = self._writer
        if writer is None or writer.done() or not self._sending:
            return
        logger.info("connection %s: send stuck while closing, abandoning the socket", self.id)
        self._set_state(ConnectionState.CLOSED)
        writer.cancel()
        if self.transport is not None:
            self.transport.abort()  # uvicorn's graceful close would wait for the reader
        if self.abort is not None:
            self.abort()

    @property
    def queued(self) -> int:
        return len(self._queue) if self._queue else 0

    async def _drain(self) -> None:
        queue = self._queue
        try:
            while queue:  # None or empty: nothing to write
                item = queue.popleft()
                if isinstance(item, _CloseMarker):
                    queue.clear()
                    try:
                        await asyncio.wait_for(self.close_transport(item.code), CLOSE_TIMEOUT)
                    except TimeoutError:
                        logger.info("connection %s: close not flushed in %ss", self.id, CLOSE_TIMEOUT)
                    self._set_state(ConnectionState.CLOSED)
                    return
                self._sending = True
                try:
                    await self.send_text(item)
                finally:
                    self._sending = False
                self.frames_out += 1
        except asyncio.CancelledError:
            raise
        except Exception:  # the peer went away mid-send: the consumer's disconnect cleans up
            logger.debug("connection %s: send failed", self.id, exc_info=True)
        finally:
            if self._writer is asyncio.current_task():
                self._writer = None

    async def wait_closed(self, timeout: float) -> None:
        """Wait until queued frames and the close have been handed to the transport."""
        writer = self._writer
        if writer is not None:
            await asyncio.wait({writer}, timeout=timeout)  # never raises the writer's fate

    def stop(self) -> None:
        """The connection is gone (the hub removed it): write nothing more."""
        self._set_state(ConnectionState.CLOSED)
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user_id,
            "channels": sorted(self.subscriptions),
            "connected_at": self.connected_at,
            "last_seen": self.last_seen,
            "rtt_ms": None if self.rtt is None else round(self.rtt * 1000, 1),
            "missed_pongs": self.heartbeat.missed,
            "quality": self.heartbeat.quality.value,
            "queued": self.queued,
        }


class ConnectionManager:
    """Process-local registry: who is connected, as which user (presence is in Redis)."""

    def __init__(self) -> None:
        self._by_id: dict[str, Connection] = {}
        self._by_user: dict[int, set[Connection]] = {}

    def add(self, conn: Connection) -> None:
        self._by_id[conn.id] = conn
        if conn.user_id is not None:
            self._by_user.setdefault(conn.user_id, set()).add(conn)

    def remove(self, conn: Connection) -> None:
        self._by_id.pop(conn.id, None)
        self._detach_user(conn)

    def get(self, conn_id: str) -> Connection | None:
        return self._by_id.get(conn_id)

    def associate_user(self, conn: Connection, principal: Principal) -> tuple[int | None, int | None]:
        """Switch the connection's user; returns (old user id, new user id)."""
        old = conn.user_id
        self._detach_user(conn)
        conn.principal = principal
        if conn.id in self._by_id and principal.user_id is not None:
            self._by_user.setdefault(principal.user_id, set()).add(conn)
        return old, principal.user_id

    def _detach_user(self, conn: Connection) -> None:
        if conn.user_id is None:
            return
        conns = self._by_user.get(conn.user_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self._by_user[conn.user_id]

    def connections_of(self, user_id: int) -> set[Connection]:
        return set(self._by_user.get(user_id, ()))

    def users(self) -> list[int]:
        return list(self._by_user)

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def user_count(self) -> int:
        return len(self._by_user)
