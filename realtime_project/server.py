"""The project's server launcher: uvicorn (production) or daphne, with drain and deflate.

- uvicorn with `--ws websockets-sansio`: the production gateway (measured before this
  project: 82,500 deliveries/s vs daphne's 1,900 for the same hub). permessage-deflate is negotiated
  by default; the transport frame limit is REALTIME["MAX_MESSAGE_BYTES"].
- daphne: supported for development and deployments that need it. Daphne never
  negotiates permessage-deflate (django/daphne#331) although its autobahn factory can;
  we turn it on through daphne's own `ready_callable` hook, which runs after the
  factory exists and before the reactor starts: no monkey-patching.

Both drain on SIGTERM/SIGINT: clients get a `reconnect` frame with a jittered delay,
queued frames are flushed, then the connection closes with 1012.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from typing import Any

from .gateway.conf import REALTIME, gateway_settings

logger = logging.getLogger("realtime.server")


#: Young-generation threshold: the default (700) runs a collection every few hundred
#: allocations, i.e. many times per fan-out burst; full collections are what pause.
GC_THRESHOLDS = (50_000, 20, 20)


def tune_gc() -> None:
    """Freeze start-up objects out of the collector and collect less often.

    Full collections over ~1 M tracked objects were measured pausing a gateway
    with 5,000 connections for 0.5-0.84 s. Everything alive after start-up (Django,
    modules, settings) lives for the whole process: `gc.freeze()` moves it to a
    permanent generation the collector never scans. Disable with REALTIME["GC_FREEZE"]
    (env REALTIME_GC_FREEZE=0; the benchmark compares both).
    """
    if not REALTIME.GC_FREEZE:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    logger.info("gc: froze %d start-up objects; thresholds %s", gc.get_freeze_count(), GC_THRESHOLDS)


async def _start_hub() -> None:
    """Start the hub with the server, so presence and readiness don't wait for a client."""
    from .gateway.serving import get_hub

    try:
        await get_hub()
    except Exception:  # e.g. Redis down at boot: the first connection retries
        logger.exception("hub start failed")
    tune_gc()


async def _drain_all(reason: str = "server_restart") -> None:
    from .gateway.drain import drain
    from .gateway.runtime import all_hubs

    for hub in all_hubs():
        await drain(hub, reason)


# --- uvicorn -------------------------------------------------------------------------


class InboundQueue:
    """The part of `asyncio.Queue` uvicorn's WebSocket protocol uses (`put_nowait`, `get`,
    `empty`) for the events it hands the app, without asyncio.Queue's three deques
    (760 bytes each, for the life of every connection, while nearly always empty)."""

    __slots__ = ("_getters", "_items")

    def __init__(self) -> None:
        self._items: list[Any] | None = None
        self._getters: list[asyncio.Future[None]] | None = None

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = [item]
        else:
            self._items.append(item)
        getters = self._getters
        if getters:
            getter = getters.pop(0)
            if not getter.done():
                getter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = [getter]
            else:
                self._getters.append(getter)
            try:
                await getter
            except BaseException:
                if self._getters and getter in self._getters:
                    self._getters.remove(getter)
                if self._items and getter.done() and not getter.cancelled():
                    self._wake_next()  # it was woken for an item it will not take
                raise
        items = self._items
        item = items.pop(0)
        if not items:
            self._items = None
        elif self._getters:
            self._wake_next()
        return item

    def _wake_next(self) -> None:
        while self._getters:
            getter = self._getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                return

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0


class LeanEvent:
    """`asyncio.Event` without a deque of waiters until someone waits (uvicorn keeps one
    per connection for `writable`, which is set nearly all the time)."""

    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: list[asyncio.Future[bool]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if self._value:
            return
        self._value = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(True)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = [waiter]
        else:
            self._waiters.append(waiter)
        try:
            return await waiter
        finally:
            if self._waiters and waiter in self._waiters:
                self._waiters.remove(waiter)


DEFAULT_APP = "realtime_project.asgi:application"


def uvicorn_protocol_class(*, compression: bool = True) -> Any:
    """uvicorn's websockets-sansio protocol, negotiating permessage-deflate without server
    context takeover.

    Each message is then compressed on its own (RFC 7692 §7.1.1.1; a server may ask for
    it even when the client did not), so a fan-out frame compresses to the same bytes for
    every such connection: the hub compresses it once per publication and writes it
    straight to each socket (`gateway/direct.py`). With context takeover (uvicorn's
    default) every delivery is compressed again per connection, and each connection keeps
    a compressor of its own. The cost: smaller messages compress less (docs/benchmarks.md).
    """
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
    from websockets.server import ServerProtocol

    # Stateless (it only negotiates): one for every connection of the process.
    factory = ServerPerMessageDeflateFactory(
        server_no_context_takeover=True,
        server_max_window_bits=12,
        client_max_window_bits=12,
        compress_settings={"memLevel": 5},
    )

    class GatewayWebSocketsProtocol(WebSocketsSansIOProtocol):
        #: Whether to offer permessage-deflate. uvicorn's own `ws_per_message_deflate` is
        #: turned off for this class, so its constructor builds no deflate factory of its own.
        deflate = True
        #: Whether this connection's invalid UTF-8 was logged (once per connection).
        invalid_utf8_logged = False

        def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(config, *args, **kwargs)
            if self.deflate:
                self.conn = ServerProtocol(extensions=[factory], max_size=config.ws_max_size, logger=self.conn.logger)
            # Memory per idle connection (issue #10, <= 20 KB): lean equivalents of the
            # asyncio.Queue and asyncio.Event uvicorn keeps for every connection.
            self.queue = InboundQueue()  # type: ignore[assignment]
            self.writable = LeanEvent()  # type: ignore[assignment]
            self.writable.set()

        #: Offered each complete text message first; True means it was handled there
        #: (the consumer's heartbeat answers: `GatewayConsumer._read_pong`).
        text_hook: Any = None

        def handle_text(self, event: Any) -> None:
            hook = self.text_hook
            if hook is not None and event.fin and not self.close_sent and hook(event.data):
                return  # no app wake-up, no pause/resume of reading for this message
            super().handle_text(event)

        def start_keepalive(self) -> None:
            # Called once the handshake response is written: the handshake's request and
            # response (~2 KB of headers objects) are not read again; uvicorn keeps them.
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]
            super().start_keepalive()

        def send_receive_event_to_app(self) -> None:
            # uvicorn's own, except for a text message that is not UTF-8: uvicorn logs an
            # ERROR with a traceback for each one (a log flood anyone can cause). Here it
            # is one WARNING line per connection, and the close is 1007 as before.
            if self.curr_msg_data_type != "text" or self.close_sent:
                super().send_receive_event_to_app()
                return
            data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
            self.frames = []
            try:
                text = data.decode()
            except UnicodeDecodeError:
                if not self.invalid_utf8_logged:
                    self.invalid_utf8_logged = True
                    logger.warning("closing WebSocket from %s: text frame is not valid UTF-8 (1007)", self.client)
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
            self.queue.put_nowait({"type": "websocket.receive", "text": text})
            if not self.read_paused:
                self.read_paused = True
                self.transport.pause_reading()

        async def send(self, message: Any) -> None:
            await super().send(message)
            if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
                # A denial response (connection limits) ends the handshake; uvicorn does
                # not note it and would log "returned without completing handshake".
                self.handshake_complete = True

    GatewayWebSocketsProtocol.deflate = compression
    return GatewayWebSocketsProtocol


class _HeadTimeout(asyncio.Protocol):
    """Drops a client that has not sent its whole request head within `head_timeout`
    seconds of connecting or of starting a request (mixed into uvicorn's HTTP protocols,
    before them)."""

    head_timeout = 10.0
    _head_timer: asyncio.TimerHandle | None = None
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    client: Any

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None and self.head_timeout > 0:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            logger.info("dropped %s: request head not received within %ss", self.client, self.head_timeout)
            self.transport.abort()


def uvicorn_http_class(kind: str, head_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (`kind`: auto, httptools or h11) with a request-head
    timeout: slow-headers clients are dropped. uvicorn has none of its own (its keep-alive
    timer only runs between requests, and any byte received cancels it)."""
    if kind not in ("auto", "httptools", "h11"):
        raise ValueError(f"REALTIME_HTTP must be auto, httptools or h11, not {kind!r}")
    if kind != "h11":
        try:
            import httptools  # noqa: F401
        except ImportError:  # pragma: no cover - httptools is pinned
            kind = "h11"
    if kind == "h11":
        import h11
        from uvicorn.protocols.http.h11_impl import H11Protocol

        class H11HeadTimeout(_HeadTimeout, H11Protocol):
            def handle_events(self) -> None:
                super().handle_events()
                # h11 leaves IDLE once a request's head is complete (an upgrade included).
                if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                    self._arm_head_timer()
                else:
                    self._disarm_head_timer()

        H11HeadTimeout.head_timeout = head_timeout
        return H11HeadTimeout

    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HttpToolsHeadTimeout(_HeadTimeout, HttpToolsProtocol):
        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm_head_timer()

        def on_headers_complete(self) -> None:
            # Before an upgrade is handed over to the WebSocket protocol.
            self._disarm_head_timer()
            super().on_headers_complete()

    HttpToolsHeadTimeout.head_timeout = head_timeout
    return HttpToolsHeadTimeout


def run_uvicorn(
    host: str,
    port: int,
    *,
    compression: bool = True,
    context_takeover: bool | None = None,
    log_level: str = "warning",
    app: str = DEFAULT_APP,
) -> None:
    """Serve with uvicorn. `context_takeover` (default: REALTIME["DEFLATE_CONTEXT_TAKEOVER"],
    off) keeps uvicorn's per-connection compression contexts: better ratios for small
    messages, but every delivery is compressed again (see `uvicorn_protocol_class`)."""
    import uvicorn

    if context_takeover is None:
        context_takeover = bool(REALTIME.DEFLATE_CONTEXT_TAKEOVER)

    class DrainingServer(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            # Hub and GC first, then listen: once /healthz answers, a connection gets its
            # welcome at once (a reconnect storm starts when the port opens).
            await _start_hub()
            await super().startup(sockets=sockets)

        async def shutdown(self, sockets: Any = None) -> None:
            # Stop listening first: a balancer's connection attempts are refused and
            # go to another gateway (HAProxy's redispatch), instead of reaching this one
            # while it drains (a 403), however long the balancer takes to mark it down.
            for server in self.servers:
                server.close()
            # uvicorn closes every WebSocket with 1012 at once in its shutdown; tell
            # clients first and let them go with jitter, then let uvicorn finish.
            try:
                await _drain_all()
            except Exception:
                logger.exception("drain failed")
            await super().shutdown(sockets=sockets)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        # The gateway's protocol class in both cases; with context takeover, uvicorn's own
        # deflate factory (ws_per_message_deflate) negotiates instead of the class's.
        ws=uvicorn_protocol_class(compression=compression and not context_takeover),
        ws_max_size=gateway_settings().max_message_bytes,
        # With the gateway's protocol class, deflate is negotiated by the class itself.
        ws_per_message_deflate=compression and bool(context_takeover),
        # The application sends its own heartbeat (protocol v1), with RTT metrics.
        ws_ping_interval=None,
        ws_ping_timeout=None,
        lifespan="off",
        # REALTIME["EVENT_LOOP"]: "auto" (uvloop when installed), "uvloop" or "asyncio";
        # measured in docs/benchmarks.md (bench/live_path.py --loop).
        loop=str(REALTIME.EVENT_LOOP),
        http=uvicorn_http_class(str(REALTIME.HTTP), gateway_settings().handshake_timeout),
        log_config=None,
        log_level=log_level,
        timeout_graceful_shutdown=int(gateway_settings().drain_grace_seconds) + 3,
    )
    DrainingServer(config).run()


# --- daphne --------------------------------------------------------------------------


def accept_deflate(offers: list[Any]) -> Any:
    """Accept the client's first permessage-deflate offer (autobahn's accept hook)."""
    from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept

    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            return PerMessageDeflateOfferAccept(offer)  # type: ignore[no-untyped-call]
    return None


def gateway_protocol_class() -> Any:
    """Daphne's WebSocket protocol, able to close with the RFC 6455 server codes.

    autobahn's `sendClose` accepts only 1000 and 3000-4999, so daphne silently fails to
    send 1012 (service restart, used by the drain) or 1011. Below that API autobahn's
    `sendCloseFrame` writes any code; this subclass is installed on daphne's factory.
    """
    from daphne.ws_protocol import WebSocketProtocol

    class GatewayWebSocketProtocol(WebSocketProtocol):  # type: ignore[misc]
        def serverClose(self, code: int | None = None) -> None:
            code = 1000 if code is None else int(code)
            if code == 1000 or 3000 <= code <= 4999:
                super().serverClose(code=code)
            else:
                self.sendCloseFrame(code=code, isReply=False)

    return GatewayWebSocketProtocol


def run_daphne(host: str, port: int, *, compression: bool = True, app: str = DEFAULT_APP) -> None:
    from daphne.endpoints import build_endpoint_description_strings
    from daphne.server import Server
    from django.utils.module_loading import import_string
    from twisted.internet import reactor as twisted_reactor

    application = import_string(app.replace(":", "."))

    reactor: Any = twisted_reactor  # Twisted's reactor is installed dynamically

    limit = gateway_settings().max_message_bytes
    head_timeout = gateway_settings().handshake_timeout
    server: Server

    def begin_drain() -> None:
        loop = asyncio.get_event_loop()
        future = asyncio.run_coroutine_threadsafe(_drain_all(), loop)
        future.add_done_callback(lambda _: reactor.callFromThread(stop_when_closed, time.monotonic() + 2.0))

    def stop_when_closed(deadline: float) -> None:
        # Twisted writes the close frames asynchronously: stop once every WebSocket
        # has finished its closing handshake (or the deadline passes).
        open_sockets = [p for p, info in server.connections.items() if "disconnected" not in info]
        if open_sockets and time.monotonic() < deadline:
            reactor.callLater(0.05, stop_when_closed, deadline)
            return
        reactor.stop()

    def ready() -> None:
        server.ws_factory.protocol = gateway_protocol_class()
        # A protocol violation (e.g. a text frame that is not UTF-8) is closed with its
        # code (1007), as uvicorn does, not by dropping the TCP connection.
        server.ws_factory.setProtocolOptions(failByDrop=False)
        build_http = server.http_factory.buildProtocol

        def build_with_head_timeout(addr: Any) -> Any:
            protocol = build_http(addr)
            if protocol is not None and head_timeout > 0:
                reactor.callLater(head_timeout, drop_without_head, protocol)
            return protocol

        # Daphne has no request-head timeout either (Twisted's idle timeout is reset by
        # every byte): a connection whose first request head is not complete in time is
        # dropped. Set on the factory instance: daphne offers no hook for its protocol.
        server.http_factory.buildProtocol = build_with_head_timeout
        if compression:
            server.ws_factory.setProtocolOptions(perMessageCompressionAccept=accept_deflate)
        signal.signal(signal.SIGTERM, lambda *a: reactor.callFromThread(begin_drain))
        signal.signal(signal.SIGINT, lambda *a: reactor.callFromThread(begin_drain))
        reactor.callWhenRunning(lambda: asyncio.ensure_future(_start_hub()))
        logger.info("daphne listening on %s:%s (permessage-deflate %s)", host, port, "on" if compression else "off")

    def drop_without_head(protocol: Any) -> None:
        channel = getattr(protocol, "_channel", protocol)  # Twisted's generic HTTP/1.1-or-2 wrapper
        transport = channel.transport
        if transport is None or not channel.connected or not hasattr(channel, "requests"):
            return  # gone, or HTTP/2 (never a WebSocket upgrade here)
        # No request yet, or one whose head/body is still arriving (`_command` lives from
        # the request line until the whole request is in; an upgrade has completed it).
        if not channel.requests or hasattr(channel, "_command"):
            logger.info("dropped %s: request head not received within %ss", transport.getPeer(), head_timeout)
            transport.abortConnection()

    server = Server(
        application=application,
        endpoints=build_endpoint_description_strings(host=host, port=port),
        signal_handlers=False,
        websocket_max_message_size=limit,
        websocket_max_frame_size=limit,
        ready_callable=ready,
        verbosity=0,
    )
    server.run()
