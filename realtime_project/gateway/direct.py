"""Direct writes: one fan-out frame framed once, written straight to every socket.

A server-to-client WebSocket text frame is the same bytes for every connection that
negotiated the same thing (server frames are not masked, RFC 6455 §5.1): plain, or
permessage-deflate **without server context takeover** (RFC 7692 §7.1.1.1: each
message is compressed on its own, so its bytes depend only on the payload and the
compression parameters). The gateway's uvicorn protocol negotiates exactly that
(`realtime_project/server.py`). So the hub frames — and compresses — a publication once
per kind of connection, and each idle subscriber costs one `transport.write`, instead of
an ASGI send chain per delivery (a dict, a coroutine per layer, websockets' framing and
compression, a `b"".join` — most of the CPU a delivery cost, see docs/benchmarks.md).

This is used only where it is equivalent to the ASGI send: uvicorn's websockets-sansio
protocol (the production server), no extension or permessage-deflate without server
context takeover, while the connection is open, nothing is queued before it and the
transport is not paused. Every other case — daphne, the test communicator, a paused
socket, a closing connection — takes the ordinary ASGI send, so the two paths never
reorder.
"""

from __future__ import annotations

import logging
import socket
import struct
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger("realtime.gateway")

#: The scope key under which `RawSendMiddleware` keeps the server's own `send`.
RAW_SEND_KEY = "realtime.raw_send"

try:  # uvicorn is the production server but not a hard dependency of the gateway
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from websockets.extensions.permessage_deflate import PerMessageDeflate
    from websockets.protocol import State

    _OPEN: Any = State.OPEN
except ImportError:  # pragma: no cover - uvicorn/websockets absent
    WebSocketsSansIOProtocol = None  # type: ignore[assignment,misc]
    PerMessageDeflate = None  # type: ignore[assignment,misc]
    _OPEN = None

_TEXT_FIN = 0x81  # FIN + opcode 1 (text)
_RSV1 = 0x40  # "compressed" bit of permessage-deflate (RFC 7692 §6)
_EMPTY_BLOCK = b"\x00\x00\xff\xff"

#: How a connection's fan-out frames are encoded: None (plain), or permessage-deflate
#: without context takeover as (window bits, sorted zlib compressobj settings).
FrameKind = tuple[int, tuple[tuple[str, int], ...]] | None


def text_frame(payload: bytes, *, compressed: bool = False) -> bytes:
    """An unmasked, unfragmented server text frame (RFC 6455 §5.2)."""
    head = _TEXT_FIN | _RSV1 if compressed else _TEXT_FIN
    n = len(payload)
    if n < 126:
        return bytes((head, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", head, 126, n) + payload
    return struct.pack("!BBQ", head, 127, n) + payload


def deflate_message(payload: bytes, window_bits: int, settings: tuple[tuple[str, int], ...]) -> bytes:
    """One message compressed on its own, as permessage-deflate sends it (RFC 7692 §7.2.1)."""
    options = dict(settings)
    encoder = zlib.compressobj(
        level=options.get("level", zlib.Z_DEFAULT_COMPRESSION),
        wbits=-window_bits,
        memLevel=options.get("memLevel", zlib.DEF_MEM_LEVEL),
        strategy=options.get("strategy", zlib.Z_DEFAULT_STRATEGY),
    )
    data = encoder.compress(payload) + encoder.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4] if data.endswith(_EMPTY_BLOCK) else data


class SharedFrame:
    """One outgoing frame of a fan-out: its text, and its wire bytes per kind of
    connection, each built on first use (once per publication, not per subscriber)."""

    __slots__ = ("_deflated", "_payload", "_wire", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._payload: bytes | None = None
        self._wire: bytes | None = None
        self._deflated: dict[FrameKind, bytes] | None = None

    @property
    def framed(self) -> bool:
        """Whether wire bytes were built (some subscriber took the direct path)."""
        return self._wire is not None or self._deflated is not None

    @property
    def wire(self) -> bytes:
        wire = self._wire
        if wire is None:
            wire = self._wire = text_frame(self.payload)
        return wire

    @property
    def payload(self) -> bytes:
        """The UTF-8 text, encoded once for every kind of frame built from it."""
        payload = self._payload
        if payload is None:
            payload = self._payload = self.text.encode()
        return payload

    def wire_for(self, kind: FrameKind) -> bytes:
        if kind is None:
            return self.wire
        cache = self._deflated
        if cache is None:
            cache = self._deflated = {}
        wire = cache.get(kind)
        if wire is None:
            window_bits, settings = kind
            wire = cache[kind] = text_frame(deflate_message(self.text.encode(), window_bits, settings), compressed=True)
        return wire


class DirectWriter:
    """Writes framed bytes to a uvicorn websockets-sansio connection when that is safe."""

    __slots__ = ("_conn", "_proto", "_transport", "_writable", "kind")

    def __init__(self, proto: Any, kind: FrameKind = None) -> None:
        self._proto = proto
        self._conn = proto.conn
        self._transport = proto.transport
        self._writable = proto.writable
        self.kind = kind

    def write_frame(self, frame: SharedFrame) -> bool:
        """Write the frame as this connection needs it, now; or return False (the caller
        takes the ASGI path)."""
        proto = self._proto
        if (
            proto.close_sent
            or proto.disconnected
            or not self._writable.is_set()
            or self._conn.state is not _OPEN
            or self._transport.is_closing()
        ):
            return False
        self._transport.write(frame.wire_for(self.kind))
        return True


class TransportControl:
    """Ends a uvicorn websockets-sansio connection without waiting for its reader.

    A client that stopped reading holds its socket open for as long as its buffers stay
    full: uvicorn's graceful `transport.close()` waits for the write buffer to drain,
    and an ASGI send waits for the transport to become writable. Here the close frame is
    written at once (after whatever the socket already holds, ahead of anything the
    gateway still had queued), and `abort()` drops the socket (issue #10, fault C).
    """

    __slots__ = ("_proto",)

    def __init__(self, proto: Any) -> None:
        self._proto = proto

    def close_now(self, code: int) -> bool:
        """Write the close frame now and mark the connection closed for later sends."""
        proto = self._proto
        transport = proto.transport
        if proto.close_sent or proto.disconnected or transport is None or transport.is_closing():
            return False
        try:
            proto.conn.send_close(code, "")
        except Exception:  # already closing on the protocol level
            return False
        transport.write(b"".join(proto.conn.data_to_send()))
        proto.close_sent = True
        return True

    def abort(self) -> None:
        """Drop the socket now: a reset, not a FIN behind megabytes of unread frames.

        `transport.abort()` alone discards asyncio's buffer, but the kernel still sends
        what its socket buffer holds, then FIN: the stalled client would read stale
        frames and a bare EOF. SO_LINGER 0 makes the close a reset (RFC 793 abort).
        """
        transport = self._proto.transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:  # already closed
                pass
        transport.abort()


def transport_control(raw_send: Callable[..., Any] | None) -> TransportControl | None:
    """A `TransportControl` for the uvicorn connection behind `raw_send`, if it is one."""
    if raw_send is None or WebSocketsSansIOProtocol is None:
        return None
    proto = getattr(raw_send, "__self__", None)
    if not isinstance(proto, WebSocketsSansIOProtocol) or getattr(proto, "transport", None) is None:
        return None
    return TransportControl(proto)


def direct_writer(raw_send: Callable[..., Any] | None) -> DirectWriter | None:
    """A `DirectWriter` for the server connection behind `raw_send`, if it qualifies."""
    if raw_send is None or WebSocketsSansIOProtocol is None:
        return None
    proto = getattr(raw_send, "__self__", None)
    if not isinstance(proto, WebSocketsSansIOProtocol):
        return None
    conn = getattr(proto, "conn", None)
    if conn is None or getattr(proto, "transport", None) is None:
        return None
    if not conn.extensions:
        return DirectWriter(proto)
    kind = shared_deflate_kind(conn.extensions)
    if kind is None:
        return None  # per-connection compression context: keep the ASGI send
    return DirectWriter(proto, kind)


def set_text_hook(raw_send: Callable[..., Any] | None, hook: Callable[[bytes], bool] | None) -> bool:
    """Let the server connection behind `raw_send` offer each complete text message to
    `hook` before queueing it for the app (True: consumed). Only the gateway's uvicorn
    protocol class has the hook (`realtime_project/server.py`); returns whether it took it."""
    proto = getattr(raw_send, "__self__", None)
    if proto is None or not hasattr(proto, "text_hook"):
        return False
    proto.text_hook = hook
    return True


def shared_deflate_kind(extensions: list[Any]) -> FrameKind:
    """The frame kind of permessage-deflate without server context takeover, else None."""
    if len(extensions) != 1 or PerMessageDeflate is None:
        return None
    ext = extensions[0]
    if not isinstance(ext, PerMessageDeflate) or not ext.local_no_context_takeover:
        return None
    settings = tuple(sorted((str(k), int(v)) for k, v in (ext.compress_settings or {}).items()))
    return (int(ext.local_max_window_bits or 15), settings)


class RawSendMiddleware:
    """WebSocket middleware (outermost after the connection limits): keeps the server's `send` in the scope.

    Channels' session middleware wraps `send` (it checks the session on every message);
    the gateway writes its frames with the server's own `send`, which also lets it
    recognise the server's connection for direct writes.
    """

    def __init__(self, inner: Callable[..., Awaitable[Any]]) -> None:
        self.inner = inner

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[Any]:
        # Added in place: the server made this scope for this connection alone, and a copy
        # would stay referenced for the connection's life (~1 KB each). Not a coroutine:
        # the inner app's awaitable is returned as is, so no frame of this middleware stays
        # suspended for the life of every connection.
        scope[RAW_SEND_KEY] = send
        return self.inner(scope, receive, send)
