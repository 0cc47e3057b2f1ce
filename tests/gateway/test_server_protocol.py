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
