"""Direct writes: a fan-out frame framed once and written straight to uvicorn's sockets."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from typing import Any

import pytest
import websockets
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode

from realtime_project.gateway.api import publish
from realtime_project.gateway.direct import SharedFrame, direct_writer, shared_deflate_kind, text_frame
from tests.support.servers import ops_request
from tests.support.ws import next_message


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_text_frame_is_what_websockets_would_send(size: int) -> None:
    payload = ("é" * size).encode()[:size]
    expected = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert text_frame(payload) == expected


def _server_deflate(takeover: bool = False) -> PerMessageDeflate:
    # The server side of what realtime_project/server.py negotiates.
    return PerMessageDeflate(False, not takeover, 12, 12, {"memLevel": 5})


@pytest.mark.parametrize("size", [0, 1, 200, 5000, 70000])
def test_deflated_frame_is_what_websockets_would_send(size: int) -> None:
    payload = b'{"type":"message","channel":"prices:BTC","data":{"price":97000.5}}' * (size // 60 + 1)
    payload = payload[:size]
    kind = shared_deflate_kind([_server_deflate()])
    assert kind == (12, (("memLevel", 5),))
    frame = SharedFrame(payload.decode())
    ext = _server_deflate()
    for _ in range(2):  # no context carried from one message to the next
        expected = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[ext])
        assert frame.wire_for(kind) == expected
    # and a client inflates it back
    wire = frame.wire_for(kind)
    assert wire[0] == 0xC1  # FIN + RSV1 (compressed) + text
    header = {126: 4, 127: 10}.get(wire[1] & 0x7F, 2)
    client = PerMessageDeflate(True, False, 12, 12)
    assert client.decode(Frame(Opcode.TEXT, wire[header:], rsv1=True)).data == payload


def test_context_takeover_connections_are_not_shared() -> None:
    assert shared_deflate_kind([_server_deflate(takeover=True)]) is None
    assert shared_deflate_kind([]) is None


def test_shared_frame_is_framed_once_and_only_on_demand() -> None:
    frame = SharedFrame('{"type":"message"}')
    assert not frame.framed
    wire = frame.wire
    assert frame.framed and frame.wire is wire
    assert wire == text_frame(b'{"type":"message"}')


def test_only_uvicorn_connections_get_a_direct_writer() -> None:
    async def send(message: Any) -> None:
        return None

    assert direct_writer(None) is None
    assert direct_writer(send) is None  # not a server connection (daphne, tests)


def _shared_frames(http_url: str) -> float:
    with urllib.request.urlopen(ops_request(f"{http_url}/metrics"), timeout=5) as response:
        text = response.read().decode()
    match = re.search(r"^realtime_shared_frames_total ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


async def _subscribe(ws: Any) -> None:
    assert json.loads(await ws.recv())["type"] == "welcome"
    await ws.send(json.dumps({"type": "subscribe", "id": 1, "channel": "prices:BTC"}))
    while json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] != "subscribed":
        pass


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
@pytest.mark.e2e
async def test_uvicorn_plain_and_deflate_clients_get_identical_streams(
    live_server_factory: Any, redis_settings: Any, redis_url: str, key_prefix: str
) -> None:
    server = live_server_factory(server="uvicorn", redis=redis_url, key_prefix=key_prefix)
    payloads = [{"i": 0}, {"i": 1, "pad": "x" * 200}, {"i": 2, "pad": "é" * 40000}, {"i": 3}]
    async with (
        websockets.connect(server.ws_url, compression=None, max_size=None) as plain,
        websockets.connect(server.ws_url, max_size=None) as deflate,
    ):
        assert not plain.protocol.extensions
        (ext,) = deflate.protocol.extensions
        # The server compresses each message on its own, so it can share the bytes.
        assert ext.name == "permessage-deflate" and ext.remote_no_context_takeover
        await _subscribe(plain)
        await _subscribe(deflate)
        before = await asyncio.to_thread(_shared_frames, server.http_url)
        pubs = [await asyncio.to_thread(publish, "prices:BTC", data) for data in payloads]
        for ws in (plain, deflate):
            got = [await next_message(ws, timeout=5) for _ in payloads]
            assert [m["data"] for m in got] == payloads
            assert [m["seq"] for m in got] == [p.seq for p in pubs]
        # Both were written to directly: framed (and compressed) once per publication.
        assert await asyncio.to_thread(_shared_frames, server.http_url) == before + len(payloads)

        await plain.close()
        await asyncio.sleep(0.2)
        after_close = await asyncio.to_thread(_shared_frames, server.http_url)
        await asyncio.to_thread(publish, "prices:BTC", {"i": 4})
        assert (await next_message(deflate, timeout=5))["data"] == {"i": 4}
        assert await asyncio.to_thread(_shared_frames, server.http_url) == after_close + 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
@pytest.mark.e2e
async def test_context_takeover_setting_keeps_per_connection_compression(
    live_server_factory: Any, redis_settings: Any, redis_url: str, key_prefix: str
) -> None:
    server = live_server_factory(
        server="uvicorn", redis=redis_url, key_prefix=key_prefix, extra={"REALTIME_DEFLATE_CONTEXT_TAKEOVER": "1"}
    )
    async with websockets.connect(server.ws_url, max_size=None) as deflate:
        (ext,) = deflate.protocol.extensions
        assert not ext.remote_no_context_takeover  # uvicorn's own negotiation
        await _subscribe(deflate)
        before = await asyncio.to_thread(_shared_frames, server.http_url)
        for i in range(3):
            await asyncio.to_thread(publish, "prices:BTC", {"i": i, "pad": "x" * 300})
        assert [(await next_message(deflate, timeout=5))["data"]["i"] for _ in range(3)] == [0, 1, 2]
        # Compressed per connection through the ASGI send: nothing shared.
        assert await asyncio.to_thread(_shared_frames, server.http_url) == before


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
async def test_no_compression_option_negotiates_no_extension(live_server_factory: Any) -> None:
    server = live_server_factory(server="uvicorn", args=("--no-compression",))
    async with websockets.connect(server.ws_url) as ws:  # the client offers permessage-deflate
        assert json.loads(await ws.recv())["type"] == "welcome"
        assert ws.protocol.extensions == []
