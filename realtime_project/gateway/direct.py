"""Direct writes: one fan-out frame framed once, written straight to every socket.

A server-to-client WebSocket text frame without extensions is the same bytes for every
connection (server frames are not masked, RFC 6455 §5.1). So the hub frames a
publication once and each idle subscriber costs one `transport.write`, instead of an
ASGI send chain per delivery (a dict, a coroutine per layer, websockets' framing and a
`b"".join` — the larger part of the CPU a delivery cost, see docs/benchmarks.md).

This is used only where it is provably equivalent to the ASGI send: uvicorn's
websockets-sansio protocol (the production server), with no extension negotiated (a
connection with permessage-deflate has its own compression context and keeps the ASGI
path), while the connection is open, nothing is queued before it and the transport is
not paused. Every other case — daphne, the test communicator, a paused socket, a
closing connection — takes the ordinary ASGI send, so the two paths never reorder.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("realtime.gateway")

#: The scope key under which `RawSendMiddleware` keeps the server's own `send`.
RAW_SEND_KEY = "realtime.raw_send"

try:  # uvicorn is the production server but not a hard dependency of the gateway
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from websockets.protocol import State

    _OPEN: Any = State.OPEN
except ImportError:  # pragma: no cover - uvicorn/websockets absent
    WebSocketsSansIOProtocol = None  # type: ignore[assignment,misc]
    _OPEN = None

_TEXT_FIN = 0x81  # FIN + opcode 1 (text)


def text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented server text frame (RFC 6455 §5.2)."""
    n = len(payload)
    if n < 126:
        return bytes((_TEXT_FIN, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", _TEXT_FIN, 126, n) + payload
    return struct.pack("!BBQ", _TEXT_FIN, 127, n) + payload


class SharedFrame:
    """One outgoing frame of a fan-out: its text, and its wire bytes built on first use."""

    __slots__ = ("_wire", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._wire: bytes | None = None

    @property
    def framed(self) -> bool:
        """Whether the wire bytes were built (some subscriber took the direct path)."""
        return self._wire is not None

    @property
    def wire(self) -> bytes:
        wire = self._wire
        if wire is None:
            wire = self._wire = text_frame(self.text.encode())
        return wire


class DirectWriter:
    """Writes framed bytes to a uvicorn websockets-sansio connection when that is safe."""

    __slots__ = ("_conn", "_proto", "_transport", "_writable")

    def __init__(self, proto: Any) -> None:
        self._proto = proto
        self._conn = proto.conn
        self._transport = proto.transport
        self._writable = proto.writable

    def write(self, wire: bytes) -> bool:
        """Write now and return True, or return False: the caller takes the ASGI path."""
        proto = self._proto
        if (
            proto.close_sent
            or proto.disconnected
            or not self._writable.is_set()
            or self._conn.state is not _OPEN
            or self._transport.is_closing()
        ):
            return False
        self._transport.write(wire)
        return True


def direct_writer(raw_send: Callable[..., Any] | None) -> DirectWriter | None:
    """A `DirectWriter` for the server connection behind `raw_send`, if it qualifies."""
    if raw_send is None or WebSocketsSansIOProtocol is None:
        return None
    proto = getattr(raw_send, "__self__", None)
    if not isinstance(proto, WebSocketsSansIOProtocol):
        return None
    conn = getattr(proto, "conn", None)
    if conn is None or getattr(proto, "transport", None) is None or conn.extensions:
        return None  # permessage-deflate: per-connection compression, keep the ASGI send
    return DirectWriter(proto)


class RawSendMiddleware:
    """Outermost WebSocket middleware: keeps the server's `send` in the scope.

    Channels' session middleware wraps `send` (it checks the session on every message);
    the gateway writes its frames with the server's own `send`, which also lets it
    recognise the server's connection for direct writes.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        # Added in place: the server made this scope for this connection alone, and a copy
        # would stay referenced by this frame for the connection's life (~1 KB each).
        scope[RAW_SEND_KEY] = send
        return await self.inner(scope, receive, send)
