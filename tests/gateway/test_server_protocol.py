"""The gateway's uvicorn protocol keeps less per connection (issue #10: idle RSS per
subscribed connection): lean stand-ins for asyncio.Queue and asyncio.Event, and the
handshake's request and response released once the handshake is done."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from realtime_project.server import InboundQueue, LeanEvent, uvicorn_protocol_class


async def test_inbound_queue_is_fifo_and_wakes_a_waiting_getter() -> None:
    queue = InboundQueue()
    assert queue.empty() and queue.qsize() == 0
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert queue.qsize() == 2
    assert [await queue.get(), await queue.get()] == [1, 2]
    assert queue.empty()
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.put_nowait("x")
    assert await getter == "x"


async def test_inbound_queue_serves_several_getters_in_order_and_survives_a_cancelled_one() -> None:
    queue = InboundQueue()
    first = asyncio.ensure_future(queue.get())
    cancelled = asyncio.ensure_future(queue.get())
    last = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    queue.put_nowait("a")
    queue.put_nowait("b")
    assert await first == "a"
    assert await last == "b"
    assert cancelled.cancelled()
    queue.put_nowait("c")
    assert await queue.get() == "c"


async def test_inbound_queue_an_item_woken_for_a_getter_cancelled_meanwhile_goes_to_the_next() -> None:
    queue = InboundQueue()
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("only")  # wakes `first` ...
    first.cancel()  # ... which is cancelled before it runs
    assert await second == "only"
    assert first.cancelled()


async def test_lean_event_behaves_like_asyncio_event() -> None:
    event = LeanEvent()
    assert not event.is_set()
    waiters = [asyncio.ensure_future(event.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    event.set()
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert event.is_set() and await event.wait() is True
    event.clear()
    waiter = asyncio.ensure_future(event.wait())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    event.set()
    assert event.is_set()


class FakeTransport:
    def __init__(self) -> None:
        self.written = b""
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def set_write_buffer_limits(self, *args: Any, **kwargs: Any) -> None: ...


async def test_protocol_class_uses_them_and_releases_the_handshake() -> None:
    import uvicorn
    from uvicorn.server import ServerState

    received: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        received.append(await receive())
        await send({"type": "websocket.accept"})
        received.append(await receive())
        await send({"type": "websocket.send", "text": "hello"})
        received.append(await receive())

    cls = uvicorn_protocol_class()
    config = uvicorn.Config(app, ws=cls, lifespan="off", log_config=None)
    config.load()
    proto = cls(config=config, server_state=ServerState(), app_state={}, _loop=asyncio.get_running_loop())
    assert isinstance(proto.queue, InboundQueue) and isinstance(proto.writable, LeanEvent)
    transport = FakeTransport()
    proto.connection_made(transport)
    proto.data_received(
        b"GET /ws/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    for _ in range(5):
        await asyncio.sleep(0)
    assert transport.written.startswith(b"HTTP/1.1 101")
    assert received == [{"type": "websocket.connect"}]
    assert proto.request is None and proto.response is None  # released after the handshake
    # A masked client text frame "hi" reaches the app through the lean queue.
    key = b"\x01\x02\x03\x04"
    proto.data_received(b"\x81\x82" + key + bytes(c ^ key[i % 4] for i, c in enumerate(b"hi")))
    for _ in range(5):
        await asyncio.sleep(0)
    assert received[1] == {"type": "websocket.receive", "text": "hi"}
    assert transport.written.endswith(b"\x81\x05hello")
    proto.connection_lost(None)
    for _ in range(5):
        await asyncio.sleep(0)
    assert received[2]["type"] == "websocket.disconnect"


async def test_a_text_hook_takes_what_it_handles_and_the_app_gets_the_rest() -> None:
    import uvicorn
    from uvicorn.server import ServerState

    received: list[dict[str, Any]] = []
    hooked: list[bytes] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        received.append(await receive())
        await send({"type": "websocket.accept"})
        while True:
            received.append(await receive())
            if received[-1]["type"] == "websocket.disconnect":
                return

    cls = uvicorn_protocol_class()
    config = uvicorn.Config(app, ws=cls, lifespan="off", log_config=None)
    config.load()
    proto = cls(config=config, server_state=ServerState(), app_state={}, _loop=asyncio.get_running_loop())
    proto.text_hook = lambda data: hooked.append(data) or data == b"mine"
    transport = FakeTransport()
    proto.connection_made(transport)
    proto.data_received(
        b"GET /ws/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    for _ in range(5):
        await asyncio.sleep(0)

    def masked(text: bytes) -> bytes:
        key = b"\x05\x06\x07\x08"
        return bytes((0x81, 0x80 | len(text))) + key + bytes(c ^ key[i % 4] for i, c in enumerate(text))

    proto.data_received(masked(b"mine") + masked(b"theirs") + masked(b"mine"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert hooked == [b"mine", b"theirs", b"mine"]
    assert received[1:] == [{"type": "websocket.receive", "text": "theirs"}]
    proto.connection_lost(None)
    for _ in range(5):
        await asyncio.sleep(0)


async def test_heartbeat_answers_read_by_uvicorn_keep_a_connection_and_silence_closes_it(
    live_server_factory: Any,
) -> None:
    """Under uvicorn the consumer takes pongs where they are read (`_read_pong`): a client
    that answers stays open past many timeouts, a silent one is closed with 4408."""
    import json

    import websockets

    from tests.support.ws import recv_live

    server = live_server_factory(
        server="uvicorn", extra={"REALTIME_HEARTBEAT_INTERVAL": "0.2", "REALTIME_HEARTBEAT_TIMEOUT": "0.5"}
    )
    async with websockets.connect(server.ws_url) as lively, websockets.connect(server.ws_url) as quiet:
        assert json.loads(await lively.recv())["type"] == "welcome"
        assert json.loads(await quiet.recv())["type"] == "welcome"
        answered = 0
        while answered < 8:  # 8 x 0.2 s: more than three timeouts
            frame = json.loads(await asyncio.wait_for(lively.recv(), 5))
            assert frame["type"] == "ping", frame
            await lively.send(json.dumps({"type": "pong", "id": frame["id"]}))
            answered += 1
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(quiet.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
        # The lively one still answers requests through the ordinary path.
        await lively.send(json.dumps({"type": "ping", "id": "c1"}))
        frame = await recv_live(lively, timeout=5)
        assert frame == {**frame, "type": "pong", "id": "c1"}


def test_the_consumer_takes_valid_pongs_only() -> None:
    from types import SimpleNamespace

    from realtime_project.gateway.consumer import GatewayConsumer
    from tests.gateway.test_connections import Transport, make_connection
    from tests.support.clock import FakeClock

    clock = FakeClock(start=50.0)  # the connection's heartbeat started at 50, pings every 25
    conn = make_connection(Transport())
    consumer = GatewayConsumer()
    consumer.conn, consumer.hub = conn, SimpleNamespace(clock=clock)  # type: ignore[assignment]
    clock.advance(25)
    _, ping_id = conn.heartbeat.poll(clock.monotonic())
    clock.advance(0.03)
    for other in (
        b'{"type":"ping","id":1}',
        b'{"type":"pong","id":true}',  # invalid id: the ordinary path answers with an error
        b'{"type":"pong"' + b" " * 200 + b"}",
        b"\xff\xfe",
        b"[1]",
    ):
        assert consumer._read_pong(other) is False, other
    assert conn.heartbeat.answered == 0
    assert consumer._read_pong(b'{"type":"pong","id":"%s"}' % ping_id.encode()) is True
    assert conn.heartbeat.answered == 1 and conn.heartbeat.rtt == pytest.approx(0.03)
    assert conn.last_seen == clock.monotonic() and conn.frames_in == 1
