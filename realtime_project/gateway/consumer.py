"""The WebSocket consumer: handshake, auth, frame intake; I/O only, no business rules.

A plain ASGI application, one instance per connection, not a Channels consumer: it owns
no channel-layer channel (the hub joins groups once per process) and does not hop to a
thread before every frame to close old database connections, as Channels' consumers do
(27-53 % of server time when it was measured); handlers that touch the database run
through `database_sync_to_async`, which does it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from channels.db import aclose_old_connections

from ..clock import SYSTEM_CLOCK, now_ms
from .auth import (
    authenticate_ticket,
    origin_allowed,
    origin_of,
    principal_from_user,
    query_ticket,
    session_credential,
)
from .builtins import record_pong
from .conf import gateway_settings
from .connections import Connection
from .direct import RAW_SEND_KEY, direct_writer, set_text_hook, transport_control
from .errors import CloseCode, GatewayError, RateLimited, TooLarge, TooManyConnections
from .heartbeat import Heartbeat
from .hub import Hub
from .metrics import CONNECTIONS, CONNECTIONS_CLOSED, CONNECTIONS_OPENED, ERRORS, OUT_ERROR, OUT_REPLY, OUT_WELCOME
from .middleware import charge, intake_cost
from .namespaces import ANONYMOUS, Principal
from .protocol import decode_frame, error_text, frame_size, peek_id, reply_frame, safe_id, welcome_frame
from .ratelimit import TokenBucket
from .rebalance import META_BALANCER, META_BALANCERS, balancer_of
from .router import NO_REPLY, Request, router
from .serving import get_hub

logger = logging.getLogger("realtime.gateway")

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
#: A server's send returns a coroutine (`Connection._send_now` drives it by hand).
Send = Callable[[Message], Coroutine[Any, Any, None]]


class GatewayConsumer:
    """The ASGI application of one WebSocket connection at `/ws/`:
    `await GatewayConsumer()(scope, receive, send)`."""

    clock = SYSTEM_CLOCK

    # One instance lives as long as its socket: no per-instance dict.
    __slots__ = ("_abandoned", "_raw_send", "_send", "_task", "conn", "hub", "scope")

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {}
        self.conn: Connection | None = None
        self.hub: Hub | None = None
        self._task: asyncio.Task[Any] | None = None
        self._abandoned = False
        self._send: Send
        self._raw_send: Send

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        # A lean loop: one awaited receive at a time, no per-connection layer channel.
        self.scope = scope
        # The handshake goes through `send` (the middleware's, which may wrap it); frames go
        # out through the server's own send when the server offers it (direct.py).
        self._send = send
        self._raw_send = scope.get(RAW_SEND_KEY) or send
        self._task = asyncio.current_task()
        try:
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":  # nearly every message
                    await self.receive(message.get("text"), message.get("bytes"))
                elif kind == "websocket.connect":
                    await self.connect()
                elif kind == "websocket.disconnect":
                    await self._cleanup()
                    # As Channels' consumers do at disconnect: database connections past
                    # their age are closed (`database_sync_to_async` does it per call).
                    await aclose_old_connections()
                    return
                else:
                    raise ValueError(f"no handler for message type {kind}")
        except asyncio.CancelledError:
            if not self._abandoned:
                raise
            # Abandoned slow consumer: returning ends the app; the server drops the socket.
        finally:
            await self._cleanup()

    def _abandon(self) -> None:
        self._abandoned = True
        if self._task is not None:
            self._task.cancel()

    async def accept(self) -> None:
        await self._send({"type": "websocket.accept", "subprotocol": None})

    async def close(self) -> None:
        """Before `accept`: refuse the handshake (HTTP 403)."""
        await self._send({"type": "websocket.close"})

    # --- lifecycle --------------------------------------------------------------------

    async def connect(self) -> None:
        origin = origin_of(self.scope)
        if not origin_allowed(origin):
            logger.info("refused WebSocket from origin %r", origin)
            await self.close()  # before accept: the handshake is refused with HTTP 403
            return
        settings = gateway_settings()
        hub = await get_hub()
        if hub.draining:
            await self.close()
            return
        principal = principal_from_user(self.scope.get("user"))
        # The socket ends with the session or token it was opened with (credentials.py).
        credential = session_credential(self.scope) if principal.authenticated else None
        auth_error: GatewayError | None = None
        ticket = query_ticket(self.scope)
        if ticket is not None:
            try:
                principal, credential = await authenticate_ticket(ticket)
            except GatewayError as exc:
                auth_error, principal, credential = exc, ANONYMOUS, None
        await self.accept()
        now = self.clock.monotonic()
        conn = Connection(
            send_text=self._send_text,
            close_transport=self._close_transport,
            heartbeat=Heartbeat(
                settings.heartbeat_interval,
                settings.heartbeat_timeout,
                started_at=now,
                # Spread the fleet's pings (and the pongs they bring back) over the interval.
                first_ping_after=settings.heartbeat_interval * random.uniform(0.5, 1.0),
            ),
            bucket=TokenBucket.full(settings.rate_limit_per_second, settings.rate_limit_burst, now),
            queue_limit=settings.send_queue_size,
            connected_at=now,
            principal=principal,
            abort=self._abandon,
            direct=direct_writer(self.scope.get(RAW_SEND_KEY)),
            transport=transport_control(self.scope.get(RAW_SEND_KEY)),
            close_grace=settings.drain_grace_seconds,
            credential=credential,
        )
        conn.session = f"{settings.gateway_id}:{conn.id}"
        balancer, balancers = balancer_of(self.scope.get("headers") or ())
        if balancer:  # which balancer it came through: rebalance.py evens them out
            conn.meta[META_BALANCER], conn.meta[META_BALANCERS] = balancer, balancers
        self.conn, self.hub = conn, hub
        await hub.add_connection(conn)
        set_text_hook(self.scope.get(RAW_SEND_KEY), self._read_pong)
        CONNECTIONS.inc()
        CONNECTIONS_OPENED.inc()
        if auth_error is not None:
            auth_error.close_code = CloseCode.UNAUTHENTICATED
            self._error(auth_error, None)
            return
        if (
            principal.user_id is not None
            and len(hub.connections.connections_of(principal.user_id)) > settings.max_connections_per_user
        ):
            self._error(TooManyConnections(), None)
            return
        if conn.enqueue(self._welcome(conn, principal)):
            OUT_WELCOME.inc()

    def _welcome(self, conn: Connection, principal: Principal) -> str:
        settings = gateway_settings()
        return welcome_frame(
            session=conn.session,
            user_id=principal.user_id,
            is_staff=principal.is_staff,
            heartbeat_interval=settings.heartbeat_interval,
            heartbeat_timeout=settings.heartbeat_timeout,
            limits={
                "max_frame_bytes": settings.max_frame_bytes,
                "max_subscriptions": settings.max_subscriptions,
                "rate": settings.rate_limit_per_second,
                "burst": settings.rate_limit_burst,
            },
            server_time=now_ms(self.clock),
        )

    async def _cleanup(self) -> None:
        conn, hub = self.conn, self.hub
        if conn is None or hub is None:
            return
        self.conn = None
        set_text_hook(self.scope.get(RAW_SEND_KEY), None)  # no cycle through the protocol
        await hub.remove_connection(conn)
        CONNECTIONS.dec()
        if conn.close_code is not None:
            CONNECTIONS_CLOSED.labels(str(conn.close_code)).inc()

    # --- frames -----------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        conn, hub = self.conn, self.hub
        if conn is None or hub is None or conn.closing:
            return
        now = conn.last_seen = self.clock.monotonic()
        conn.frames_in += 1
        settings = gateway_settings()
        frame: dict[str, Any] | None = None
        try:
            # Every frame pays before it is decoded: one that fails to decode, a pong, an
            # oversized one costs tokens too, and a flood of them is closed with 4429.
            size = frame_size(text_data, bytes_data)
            charge(conn, intake_cost(size, settings), now, settings.flood_close_after)
            if size > settings.max_frame_bytes:
                raise TooLarge(f"frame exceeds {settings.max_frame_bytes} bytes")
            frame = decode_frame(text_data, bytes_data)
            request = Request(conn, frame, context={"hub": hub})
            result = await router.dispatch(request)
        except RateLimited as exc:
            self._error(exc, safe_id(frame) if frame is not None else peek_id(text_data))
            return
        except GatewayError as exc:
            self._error(exc, safe_id(frame) if frame is not None else exc.frame_id)
            return
        except Exception:
            logger.exception("handler failed for frame type %r", (frame or {}).get("type"))
            self._error(GatewayError("internal error"), safe_id(frame))
            return
        if result is NO_REPLY:
            return
        if (request.id is not None or result is not None) and conn.enqueue(
            reply_frame(request.id, request.type, result)
        ):
            OUT_REPLY.inc()

    def _read_pong(self, data: bytes) -> bool:
        """A heartbeat answer, handled where uvicorn reads it (the gateway's protocol class
        offers every complete text message here first): no wake-up of this consumer's
        task, no pause and resume of reading. Pongs are most of what a gateway receives
        (one per connection per interval). Anything else, or anything that is not quite a
        valid pong, returns False and takes the ordinary path (`receive`)."""
        conn, hub = self.conn, self.hub
        if conn is None or hub is None or conn.closing or len(data) > 200 or b'"pong"' not in data:
            return False
        try:
            frame = decode_frame(data.decode())
        except (GatewayError, UnicodeDecodeError):
            return False
        if frame["type"] != "pong":
            return False
        now = hub.clock.monotonic()
        # A pong pays the intake charge like every frame; with no tokens left it takes the
        # ordinary path, which refuses it (`rate_limited`, then the flood close).
        if not conn.bucket.take(now, intake_cost(len(data), gateway_settings())):
            return False
        conn.rejected_streak = 0
        conn.last_seen = now
        conn.frames_in += 1
        record_pong(conn, frame, now)
        return True

    def _error(self, exc: GatewayError, frame_id: str | int | None) -> None:
        ERRORS.labels(exc.code.value).inc()
        if self.conn is not None:
            if self.conn.enqueue(error_text(exc, frame_id)):
                OUT_ERROR.inc()
            if exc.close_code is not None:
                self.conn.close(exc.close_code)

    # --- transport (used only by the connection's writer) -----------------------------

    def _send_text(self, text: str) -> Coroutine[Any, Any, None]:
        # Returns the server's send coroutine itself: one coroutine less per frame.
        return self._raw_send({"type": "websocket.send", "text": text})

    async def _close_transport(self, code: int) -> None:
        await self._raw_send({"type": "websocket.close", "code": code})
