"""`VenueStream`: the WebSocket connections to one venue, kept subscribed and healthy.

For each batch of ids (the venue's per-connection limit) one link keeps a connection
open: it subscribes in the venue's batches at a paced rate, checks every id is
acknowledged (an id the venue refuses is set aside for `UNKNOWN_TTL`, the others keep
streaming), pings by the venue's rules, and replaces the connection:

- **before the venue's lifetime limit** (Binance 24 h) and **at once on a shutdown
  notice**: make before break — the new connection subscribes and delivers its first
  message before the old one is closed, so no update falls in between;
- **on a silent stall** (nothing for `stall_after`), a close or an error: with a
  full-jitter delay, longer after the venue said we send too much (whose pace is then
  halved).

Timers (stall, rotation, pings) read the injected `clock`, so tests move time instead of
waiting; network timeouts (connect, acknowledgements) are real ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from realtime_project.backoff import full_jitter
from realtime_project.clock import SYSTEM_CLOCK, Clock

from .events import Acked, Liveness, Problem, RateLimited, Rejected, RequestFailed, Shutdown, Tick, TradeEvent
from .order import SequenceBook, TradeIds
from .protocol import VenueProtocol

logger = logging.getLogger("prices.streams")

#: An id the venue refused is not asked for again for this long (listings change).
UNKNOWN_TTL = 600.0
#: Our pace never drops below this many messages per second after rate-limit warnings.
MIN_PACE = 0.25


class StreamSink(Protocol):
    """Where a venue's data goes (the live aggregation). Returns a rejection code or None."""

    def on_tick(self, source: str, symbol: str, tick: Tick) -> str | None: ...

    def on_trade(self, source: str, symbol: str, trade: TradeEvent) -> None: ...


@dataclass(frozen=True)
class StreamSettings:
    connect_timeout: float = 10.0
    #: How long subscribe requests may stay unacknowledged.
    ack_timeout: float = 10.0
    #: Reconnect delays: full jitter over [0, min(cap, base * 2**n)].
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    #: After the venue said we send too much, wait at least this long.
    rate_limit_wait: float = 10.0
    #: Rotate this long before the venue's lifetime limit.
    rotate_margin: float = 600.0
    #: A connection is live while it heard from the venue within 2 cadences + this.
    live_grace: float = 0.0
    #: Cadences of silence after which a venue's quotes stop counting.
    live_cadences: float = 2.0
    #: Frames larger than this close the connection (1009) and count `too_large`.
    max_message_bytes: int = 1 << 20
    #: How often the watch loop looks at the clock (stall, rotation, pings).
    watch_interval: float = 0.25


class _LinkFailed(Exception):
    def __init__(self, code: str, detail: str = "", *, rate_limited: bool = False) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.rate_limited = rate_limited


class _Pace:
    """Token bucket on real time: at most `rate` messages per second, one at a time."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._next > now:
                await asyncio.sleep(self._next - now)
                now = self._next
            self._next = now + 1.0 / self.rate


class _Connection:
    """One open WebSocket and what it saw."""

    def __init__(self, ws: ClientConnection, now: float, number: int, pace: _Pace) -> None:
        self.ws = ws
        self.number = number
        self.pace = pace
        self.opened = self.last_message = self.last_sent = now
        self.acked: set[str] = set()
        self.rejected: set[str] = set()
        self.pending: dict[int, list[str]] = {}
        self.subscribed = False
        self.first_data = asyncio.Event()
        self.wake = asyncio.Event()
        self.notice: Shutdown | None = None
        self.rate_limited = False
        self.closed: str | None = None
        self.ping_sent: float | None = None
        self.reader: asyncio.Task[None] | None = None

    async def send(self, text: str, now: float) -> None:
        await self.pace.wait()
        await self.ws.send(text)
        self.last_sent = now


class VenueStream:
    """Every connection to one venue for one source row (see the module docstring)."""

    def __init__(
        self,
        *,
        source: str,
        protocol: VenueProtocol,
        url: str,
        ids: dict[str, str],
        sink: StreamSink,
        settings: StreamSettings | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        connector: Callable[..., Any] = connect,
        on_liveness: Callable[[], None] | None = None,
    ) -> None:
        self.source = source
        self.protocol = protocol
        self.url = protocol.url(url)
        #: venue id -> our symbol
        self.ids = dict(ids)
        self.sink = sink
        self.settings = settings or StreamSettings()
        self.clock = clock
        self.rng = rng or random.Random()
        self.connector = connector
        #: Called when a connection closes or finishes subscribing (its ids' liveness changed
        #: without a deadline passing): the feed re-sweeps at once.
        self.on_liveness = on_liveness
        self.pace = protocol.messages_per_second
        self.sequences = SequenceBook()
        self.trade_ids = TradeIds(contiguous=protocol.contiguous_trade_ids)
        self._unknown: dict[str, float] = {}
        self._requests = 0
        self._connections = 0
        self.links: list[_Link] = []
        # Health counters.
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.last_error = ""
        self.last_error_at: float | None = None
        self.state = "starting"

    # --- running ---------------------------------------------------------------------

    async def run(self) -> None:
        ids = sorted(self.ids)
        size = self.protocol.ids_per_connection
        self.links = [_Link(self, ids[i : i + size], n) for n, i in enumerate(range(0, len(ids), size))]
        if not self.links:
            self.state = "idle"
            await asyncio.Event().wait()
        tasks = [asyncio.create_task(link.run(), name=f"stream:{self.source}:{link.number}") for link in self.links]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.state = "stopped"

    def next_request(self) -> int:
        self._requests += 1
        return self._requests

    def next_connection(self) -> int:
        self._connections += 1
        return self._connections

    # --- bookkeeping -----------------------------------------------------------------

    def error(self, code: str, detail: str = "") -> None:
        self.errors[code] += 1
        self.last_error = f"{code}: {detail}"[:300] if detail else code
        self.last_error_at = self.clock.time()

    def is_unknown(self, venue_id: str) -> bool:
        until = self._unknown.get(venue_id)
        if until is None:
            return False
        if until <= self.clock.monotonic():
            del self._unknown[venue_id]
            return False
        return True

    def mark_unknown(self, ids: tuple[str, ...] | list[str], reason: str) -> None:
        until = self.clock.monotonic() + UNKNOWN_TTL
        for venue_id in ids:
            if venue_id in self.ids and venue_id not in self._unknown:
                self.error("unknown_symbol", f"{venue_id}: {reason}")
                logger.warning(
                    "%s: the venue refused %s (%s); the others keep streaming", self.source, venue_id, reason
                )
            self._unknown[venue_id] = until

    def slow_down(self) -> None:
        self.pace = max(MIN_PACE, self.pace / 2)

    def on_event(self, conn: _Connection, event: Any) -> None:
        """One parsed event of connection `conn` (the reader's hot path)."""
        kind = type(event)
        if kind is Tick:
            symbol = self.ids.get(event.id)
            if symbol is None:
                self.error("unexpected_symbol", event.id)
                return
            if event.seq is not None and not self._in_order(event.id, event.seq):
                return
            self.counts["ticks"] += 1
            conn.first_data.set()
            rejected = self.sink.on_tick(self.source, symbol, event)
            if rejected is not None:
                self.error(rejected, f"{event.id} {event.price!r} at {event.time}")
        elif kind is TradeEvent:
            symbol = self.ids.get(event.id)
            if symbol is None:
                self.error("unexpected_symbol", event.id)
                return
            if event.seq is not None and not self._in_order(event.id, event.seq):
                return
            verdict = self.trade_ids.accept(event.id, event.trade_id)
            if verdict == "duplicate":
                self.counts["duplicate_trades"] += 1  # rotation overlap or a resend: harmless
                return
            if verdict == "out_of_order":
                self.error("out_of_order_trade", f"{event.id} trade {event.trade_id}")
                return
            if verdict == "gap":
                self.counts["trade_gaps"] += 1  # trades were missed upstream: counted, this one used
                self.error("trade_gap", f"{event.id}: trade {event.trade_id} after {self.trade_ids.last(event.id)}")
            if not (event.price > 0 and event.qty > 0):
                self.error("invalid_trade", f"{event.id} {event.price!r} x {event.qty!r}")
                return
            self.counts["trades"] += 1
            conn.first_data.set()
            self.sink.on_trade(self.source, symbol, event)
        elif kind is Liveness:
            if event.id is not None and event.seq is not None:
                self._in_order(event.id, event.seq)
            if event.last_trade_id is not None and event.id in self.protocol.trade_ids:
                last = self.trade_ids.last(event.id)
                if last is not None and event.last_trade_id > last:
                    self.error("missed_trades", f"{event.id}: heartbeat at trade {event.last_trade_id}, saw {last}")
                    self.trade_ids.skip_to(event.id, event.last_trade_id)
        elif kind is Acked:
            ids = list(event.ids) if event.request is None else conn.pending.pop(event.request, [])
            conn.acked.update(ids)
            if event.ids and event.request is None:
                for request, asked in list(conn.pending.items()):
                    if set(asked) <= conn.acked:
                        del conn.pending[request]
            conn.wake.set()
        elif kind is Rejected:
            self.mark_unknown(event.ids, event.reason)
            conn.rejected.update(event.ids)
            if self.protocol.rejects_whole_request:
                self._resend_without(conn, set(event.ids))
            conn.wake.set()
        elif kind is RequestFailed:
            self._request_failed(conn, event)
            conn.wake.set()
        elif kind is RateLimited:
            conn.rate_limited = True  # counted when the venue drops us (it usually does next)
            self.error("rate_limited", event.message)
            conn.wake.set()
        elif kind is Shutdown:
            self.counts["shutdown_notices"] += 1
            conn.notice = event
            conn.wake.set()
        elif kind is Problem:
            self.error(event.code, event.detail)

    def _in_order(self, venue_id: str, seq: int) -> bool:
        verdict, expected = self.sequences.check(venue_id, seq)
        if verdict == "gap":
            self.counts["sequence_gaps"] += 1
            self.error("sequence_gap", f"{venue_id}: expected {expected}, got {seq}")
        elif verdict == "late":
            self.error("out_of_order", f"{venue_id}: {seq} after {expected - 1}")
            return False
        elif verdict == "duplicate":
            self.counts["duplicates"] += 1
            return False
        return True

    def _request_failed(self, conn: _Connection, event: RequestFailed) -> None:
        request = event.request
        if request is None and self.protocol.rejects_whole_request and len(conn.pending) == 1:
            request = next(iter(conn.pending))
        asked = conn.pending.pop(request, None) if request is not None else None
        if not asked:
            self.error("request_failed", f"{event.code} {event.message}")
            return
        if len(asked) == 1:
            self.mark_unknown(asked, f"{event.code} {event.message}")
            conn.rejected.update(asked)
            return
        # The venue refused the batch without saying which id: ask for each half again.
        self.counts["bisections"] += 1
        mid = len(asked) // 2
        for part in (asked[:mid], asked[mid:]):
            asyncio.get_running_loop().create_task(self.request(conn, part))

    def _resend_without(self, conn: _Connection, refused: set[str]) -> None:
        for request, asked in list(conn.pending.items()):
            if refused & set(asked):
                del conn.pending[request]
                rest = [i for i in asked if i not in refused and not self.is_unknown(i)]
                if rest:
                    asyncio.get_running_loop().create_task(self.request(conn, rest))

    async def request(self, conn: _Connection, ids: list[str]) -> None:
        """Send one subscribe request for `ids` (paced); failures show when acks don't come."""
        request = self.next_request()
        conn.pending[request] = list(ids)
        try:
            for frame in self.protocol.subscribe(list(ids), request):
                await conn.send(frame, self.clock.monotonic())
        except ConnectionClosed:
            pass

    # --- health ----------------------------------------------------------------------

    def live_ids(self, now: float | None = None) -> set[str]:
        """Venue ids currently streaming on a connection that heard from the venue lately."""
        now = self.clock.monotonic() if now is None else now
        window = self.live_window()
        live: set[str] = set()
        for link in self.links:
            for conn in link.open_connections():
                if conn.subscribed and now - conn.last_message <= window:
                    live.update(conn.acked)
        return live

    def live_window(self) -> float:
        """Silence after which a connection's ids stop being live (2 cadences + grace)."""
        return self.settings.live_cadences * self.protocol.cadence + self.settings.live_grace

    def live_key(self, now: float) -> tuple[int, ...]:
        """The live connections' numbers: their ids' liveness changes only when this does."""
        window = self.live_window()
        return tuple(
            conn.number
            for link in self.links
            for conn in link.open_connections()
            if conn.subscribed and now - conn.last_message <= window
        )

    def live_deadline(self, now: float) -> float | None:
        """When the first live connection stops being live if it hears nothing (monotonic)."""
        window = self.live_window()
        deadlines = [
            conn.last_message + window
            for link in self.links
            for conn in link.open_connections()
            if conn.subscribed and now - conn.last_message <= window
        ]
        return min(deadlines) if deadlines else None

    def liveness_changed(self) -> None:
        if self.on_liveness is not None:
            self.on_liveness()

    def live(self, now: float | None = None) -> bool:
        wanted = {i for i in self.ids if not self.is_unknown(i)}
        return bool(wanted) and wanted <= self.live_ids(now)

    def health(self) -> dict[str, Any]:
        now = self.clock.monotonic()
        last = max((c.last_message for link in self.links for c in link.open_connections()), default=None)
        connections = sum(len(link.open_connections()) for link in self.links)
        return {
            "ok": self.live(now),
            "state": self.state,
            "connected": connections > 0,
            "connections": connections,
            "last_message_age": round(now - last, 3) if last is not None else None,
            "reconnects": self.counts["reconnects"],
            "rotations": self.counts["rotations"],
            "stalls": self.counts["stalls"],
            "shutdown_notices": self.counts["shutdown_notices"],
            "rate_limited": self.counts["rate_limited"],
            "sequence_gaps": self.counts["sequence_gaps"],
            "trade_gaps": self.counts["trade_gaps"],
            "messages": self.counts["messages"],
            "ticks": self.counts["ticks"],
            "trades": self.counts["trades"],
            "errors": dict(self.errors),
            "last_error": self.last_error or None,
            "last_error_at": self.last_error_at,
            "subscribed": len(self.live_ids(now)),
            "unknown_symbols": sorted(i for i in self._unknown if self.is_unknown(i)),
            "pace": self.pace,
        }


class _Link:
    """One batch of ids on one connection at a time (two while rotating)."""

    def __init__(self, stream: VenueStream, ids: list[str], number: int) -> None:
        self.stream = stream
        self.ids = ids
        self.number = number
        self.current: _Connection | None = None
        self.next: _Connection | None = None

    def open_connections(self) -> list[_Connection]:
        return [c for c in (self.current, self.next) if c is not None and c.closed is None]

    async def run(self) -> None:
        stream = self.stream
        attempt = 0
        delay = 0.0
        try:
            while True:
                if self.current is None:
                    if delay > 0:
                        stream.state = "backoff"
                        await stream.clock.sleep(delay)
                    stream.state = "connecting"
                    try:
                        self.current = await self._open()
                    except _LinkFailed as exc:
                        stream.error(exc.code, str(exc))
                        if exc.rate_limited:
                            stream.counts["rate_limited"] += 1
                            stream.slow_down()
                        delay = self._delay(attempt, exc.rate_limited)
                        attempt += 1
                        continue
                    stream.state = "streaming"
                reason = await self._watch(self.current)
                if reason in ("rotate", "shutdown"):
                    notice = self.current.notice
                    if notice is not None and notice.delay > 0:  # maintenance: leave, come back later
                        await self._close(self.current, reason)
                        self.current, delay = None, notice.delay
                        stream.counts["reconnects"] += 1
                        continue
                    if await self._replace(reason):
                        attempt = 0
                        continue
                    reason = "replace_failed"
                old = self.current
                await self._close(old, reason)
                self.current = None
                stream.counts["reconnects"] += 1
                if reason == "stall":
                    stream.counts["stalls"] += 1
                stream.error(reason, f"connection {old.number}")
                stream.sequences.reset()  # what was missed while away is not a gap
                stream.trade_ids.resume()
                if old.rate_limited:
                    stream.counts["rate_limited"] += 1
                    stream.slow_down()
                # A connection that streamed well before it ended starts over at attempt 0.
                if old.first_data.is_set():
                    attempt = 0
                delay = self._delay(attempt, old.rate_limited)
                attempt += 1
        finally:
            for conn in self.open_connections():
                await self._close(conn, "stopped")

    def _delay(self, attempt: int, rate_limited: bool) -> float:
        settings = self.stream.settings
        delay = full_jitter(attempt, base=settings.backoff_base, cap=settings.backoff_cap, rng=self.stream.rng)
        if rate_limited:
            # The venue said we send too much: wait it out (Binance bans IPs that repeat).
            delay += settings.rate_limit_wait
        return delay

    async def _open(self) -> _Connection:
        stream, settings, protocol = self.stream, self.stream.settings, self.stream.protocol
        try:
            async with asyncio.timeout(settings.connect_timeout + 1):
                ws = await stream.connector(
                    stream.url,
                    open_timeout=settings.connect_timeout,
                    ping_interval=protocol.ws_ping_interval,
                    ping_timeout=protocol.ws_ping_interval,
                    max_size=settings.max_message_bytes,
                    close_timeout=2,
                )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise _LinkFailed("connect_failed", f"{type(exc).__name__}: {str(exc)[:120]}") from None
        conn = _Connection(ws, stream.clock.monotonic(), stream.next_connection(), _Pace(stream.pace))
        conn.reader = asyncio.create_task(self._read(conn), name=f"stream:{stream.source}:read:{conn.number}")
        try:
            await self._subscribe(conn)
        except BaseException:
            await self._close(conn, "subscribe_failed")
            raise
        return conn

    async def _subscribe(self, conn: _Connection) -> None:
        stream = self.stream
        wanted = [i for i in self.ids if not stream.is_unknown(i)]
        size = stream.protocol.ids_per_message
        for start in range(0, len(wanted), size):
            if conn.closed is not None:
                break
            await stream.request(conn, wanted[start : start + size])
        deadline = time.monotonic() + stream.settings.ack_timeout
        while True:
            settled = conn.acked | conn.rejected | {i for i in wanted if stream.is_unknown(i)}
            if settled >= set(wanted) or conn.closed is not None:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            conn.wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await conn.wake.wait()
        if conn.closed is not None:
            raise _LinkFailed(conn.closed, "closed while subscribing", rate_limited=conn.rate_limited)
        missing = [i for i in wanted if i not in conn.acked and i not in conn.rejected and not stream.is_unknown(i)]
        if missing:
            stream.error("unacknowledged", f"{len(missing)} ids, e.g. {missing[:3]}")
        if wanted and not conn.acked:
            raise _LinkFailed("no_acknowledgement", f"none of {len(wanted)} ids acknowledged")
        conn.subscribed = True
        stream.liveness_changed()

    async def _read(self, conn: _Connection) -> None:
        stream = self.stream
        parse, on_event, clock = stream.protocol.parse, stream.on_event, stream.clock
        counts = stream.counts
        reason = "closed"
        try:
            async for frame in conn.ws:
                conn.last_message = clock.monotonic()
                conn.ping_sent = None
                counts["messages"] += 1
                for event in parse(frame):
                    on_event(conn, event)
        except ConnectionClosed as exc:
            reason = _close_reason(exc, conn)
        except Exception as exc:  # a bug must not leave the link waiting forever
            logger.exception("%s: reader of connection %d failed", stream.source, conn.number)
            reason = f"reader_error:{type(exc).__name__}"
        else:
            reason = _close_reason(None, conn)
        finally:
            if conn.closed is None:
                conn.closed = reason
            conn.wake.set()
            stream.liveness_changed()

    async def _watch(self, conn: _Connection) -> str:
        """Wait until `conn` must go: 'closed:…', 'stall', 'rotate' or 'shutdown'."""
        stream, settings, protocol = self.stream, self.stream.settings, self.stream.protocol
        clock = stream.clock
        rotate_at = protocol.lifetime - settings.rotate_margin if protocol.lifetime else None
        while True:
            if conn.closed is not None:
                return conn.closed
            if conn.notice is not None:
                return "shutdown"
            now = clock.monotonic()
            if rotate_at is not None and now - conn.opened >= rotate_at:
                return "rotate"
            silence = now - conn.last_message
            if silence >= protocol.stall_after:
                return "stall"
            ping_due = (protocol.ping_after is not None and silence >= protocol.ping_after) or (
                protocol.ping_every is not None and now - conn.last_sent >= protocol.ping_every
            )
            if ping_due and (conn.ping_sent is None or now - conn.ping_sent >= (protocol.ping_after or 5.0)):
                frame = protocol.ping(stream.next_request())
                if frame is not None:
                    conn.ping_sent = now
                    with contextlib.suppress(ConnectionClosed):
                        await conn.send(frame, now)
            conn.wake.clear()
            waker = asyncio.ensure_future(conn.wake.wait())
            sleeper = asyncio.ensure_future(clock.sleep(settings.watch_interval))
            try:
                await asyncio.wait({waker, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waker.cancel()
                sleeper.cancel()

    async def _replace(self, reason: str) -> bool:
        """Make before break: a new connection streams before the old one is closed."""
        stream = self.stream
        old = self.current
        assert old is not None
        try:
            self.next = await self._open()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(stream.settings.ack_timeout):
                    await self.next.first_data.wait()
        except _LinkFailed as exc:
            stream.error(exc.code, f"replacing connection {old.number}: {exc}")
            if self.next is not None:
                await self._close(self.next, "replace_failed")
            self.next = None
            return False
        new, self.next = self.next, None
        self.current = new
        await self._close(old, reason)
        stream.counts["rotations" if reason == "rotate" else "reconnects"] += 1
        logger.info("%s: connection %d replaced by %d (%s)", stream.source, old.number, new.number, reason)
        return True

    async def _close(self, conn: _Connection, reason: str) -> None:
        if conn.closed is None:
            conn.closed = reason
            self.stream.liveness_changed()
        # Every wait here lets a cancellation of this task through (the feed stopping, a
        # test's teardown): Python 3.11's `asyncio.wait_for` returns the result instead when
        # the awaited close completes as the cancellation arrives, and awaiting the reader
        # under `suppress(BaseException)` swallowed it; a link that loses its cancellation
        # reconnects forever and its stop hangs (seen: 1 full suite run in 4).
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                await conn.ws.close(1000, reason[:100])
        if conn.reader is not None and not conn.reader.done():
            conn.reader.cancel()
            await asyncio.wait({conn.reader})  # its end, not its outcome (CancelledError)


def _close_reason(exc: ConnectionClosed | None, conn: _Connection) -> str:
    if conn.rate_limited:
        return "rate_limited"
    code = exc.rcvd.code if exc is not None and exc.rcvd is not None else None
    if code == 1009 or (exc is not None and exc.sent is not None and exc.sent.code == 1009):
        return "too_large"
    if code == 1008:  # Binance drops a connection over its message rate with a policy violation
        conn.rate_limited = True
        return "rate_limited"
    if exc is not None and exc.rcvd is None:
        return "connection_lost"
    return f"closed_{code}" if code is not None else "closed"
