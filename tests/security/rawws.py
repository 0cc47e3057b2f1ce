"""A raw WebSocket client for abuse tests: sends what well-behaved clients cannot
(invalid UTF-8 in text frames, request heads one byte at a time, floods)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
from dataclasses import dataclass
from typing import Any

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


def request_head(port: int, path: str = "/ws/") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def client_frame(payload: bytes, opcode: int = TEXT) -> bytes:
    """A masked, unfragmented client frame (RFC 6455 §5.2); the payload is not checked."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


@dataclass
class Frame:
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        if self.opcode != CLOSE or len(self.payload) < 2:
            return None
        return int(struct.unpack("!H", self.payload[:2])[0])

    def json(self) -> Any:
        return json.loads(self.payload)


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, path: str = "/ws/") -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request_head(port, path))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def send(self, payload: bytes | str, opcode: int = TEXT) -> None:
        self.writer.write(client_frame(payload.encode() if isinstance(payload, str) else payload, opcode))
        await self.writer.drain()

    async def recv(self, timeout: float = 5) -> Frame:
        async def read() -> Frame:
            b0, b1 = await self.reader.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
            return Frame(b0 & 0x0F, await self.reader.readexactly(n))

        return await asyncio.wait_for(read(), timeout)

    async def until_close(self, timeout: float = 10) -> tuple[list[Frame], int | None]:
        """Frames until the server's close frame (or EOF); returns them and the close code."""
        frames: list[Frame] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                frame = await self.recv(max(0.01, deadline - loop.time()))
            except asyncio.IncompleteReadError:
                return frames, None
            if frame.opcode == CLOSE:
                return frames, frame.close_code
            frames.append(frame)

    def close(self) -> None:
        self.writer.close()
