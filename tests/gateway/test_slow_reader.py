"""Fault C: a reader that never reads is dropped, on a real uvicorn server (issue #10).

The client is a raw socket with a tiny receive buffer that completes the WebSocket
handshake, subscribes, and then never reads again while 1 KB messages are published at
500/s. The gateway must close it with 4409 (written at once, ahead of anything it still
held) or abort it, and the TCP connection must be gone shortly after (the grace period),
with the server's memory bounded; the other subscriber gets everything.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import websockets

from realtime_project.gateway.api import publish

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.e2e]


def masked_text(text: str) -> bytes:
    payload = text.encode()
    key = os.urandom(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return bytes((0x81, 0x80 | len(payload))) + key + body


def stalled_reader(port: int) -> socket.socket:
    """Handshake, read the welcome, subscribe to prices:BTC, then never read again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    sock.sendall(masked_text(json.dumps({"type": "subscribe", "id": 1, "channel": "prices:BTC"})))
    return sock


def established(port: int, client_port: int) -> bool:
    """Whether the server side of the client's TCP connection is still ESTABLISHED."""
    want_local, want_remote = f"{port:04X}", f"{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if local.endswith(":" + want_local) and remote.endswith(":" + want_remote):
            return state == "01"
    return False


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def test_a_reader_that_never_reads_is_dropped_and_others_get_everything(
    live_server_factory: Any, redis_settings: Any, redis_url: str, key_prefix: str
) -> None:
    server = live_server_factory(
        server="uvicorn",
        redis=redis_url,
        key_prefix=key_prefix,
        extra={"REALTIME_SEND_QUEUE_SIZE": "200", "REALTIME_DRAIN_GRACE_SECONDS": "1"},
    )
    assert server.proc is not None
    stuck = await asyncio.to_thread(stalled_reader, server.port)
    client_port = stuck.getsockname()[1]
    rss_before = rss_mb(server.proc.pid)
    payload = {"pad": "x" * 1000}
    stop = threading.Event()
    published: list[int] = []

    def publisher() -> None:  # 500 msg/s x 1 KB until told to stop (bounded: 30 s)
        start = time.monotonic()
        n = 0
        while not stop.is_set() and n < 15_000:
            due = start + n / 500
            if (delay := due - time.monotonic()) > 0:
                time.sleep(delay)
            published.append(publish("prices:BTC", {**payload, "n": n}).seq)
            n += 1

    async with websockets.connect(server.ws_url, max_size=None) as healthy:
        assert json.loads(await healthy.recv())["type"] == "welcome"
        await healthy.send(json.dumps({"type": "subscribe", "id": 1, "channel": "prices:BTC"}))
        assert json.loads(await healthy.recv())["type"] == "subscribed"
        thread = threading.Thread(target=publisher)
        thread.start()
        try:
            got = 0
            deadline = time.monotonic() + 30
            while got % 100 or established(server.port, client_port):
                assert time.monotonic() < deadline, (
                    f"the stalled reader was never dropped ({len(published)} published)\n{server.read_log()[-3000:]}"
                )
                frame = json.loads(await asyncio.wait_for(healthy.recv(), 10))
                if frame["type"] == "message":
                    assert frame["data"]["n"] == got  # in order, nothing lost
                    got += 1
        finally:
            stop.set()
            await asyncio.to_thread(thread.join)
        assert got > 0
        # The healthy subscriber still gets the rest, in order.
        while got < len(published):
            frame = json.loads(await asyncio.wait_for(healthy.recv(), 10))
            if frame["type"] == "message":
                assert frame["data"]["n"] == got
                got += 1
    assert rss_mb(server.proc.pid) - rss_before < 64, "server memory grew with the stalled reader"
    # What the stalled client reads now ends with 4409 or a reset, never a bare EOF.
    stuck.settimeout(5)
    data = b""
    try:
        while chunk := stuck.recv(65536):
            data += chunk
        ended = "eof"
    except ConnectionResetError:
        ended = "reset"
    finally:
        stuck.close()
    close_frame = bytes((0x88, 2)) + (4409).to_bytes(2, "big")
    assert ended == "reset" or data.endswith(close_frame), (ended, data[-16:])
    assert "slow consumer" in server.read_log()
