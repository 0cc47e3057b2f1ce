"""WebSocket test helpers: a Channels communicator speaking protocol v1."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from channels.testing import WebsocketCommunicator

from realtime_project.asgi import application


class Client:
    """Wraps `WebsocketCommunicator` with JSON frames and protocol helpers."""

    def __init__(self, path: str = "/ws/", headers: list[tuple[bytes, bytes]] | None = None, user: Any = None) -> None:
        self.comm = WebsocketCommunicator(application, path, headers=headers or [])
        if user is not None:
            self.comm.scope["user"] = user
        self.welcome: dict[str, Any] | None = None

    async def connect(self, expect_welcome: bool = True) -> bool:
        connected, _ = await self.comm.connect(timeout=5)
        if connected and expect_welcome:
            self.welcome = await self.recv()
            assert self.welcome["type"] == "welcome", self.welcome
        return bool(connected)

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.comm.send_to(text_data=frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = 3) -> dict[str, Any]:
        out = await self.comm.receive_from(timeout=timeout)
        return json.loads(out)  # type: ignore[no-any-return]

    async def request(self, frame: dict[str, Any], timeout: float = 3) -> dict[str, Any]:
        await self.send(frame)
        return await self.recv(timeout)

    async def nothing(self, timeout: float = 0.2) -> bool:
        return bool(await self.comm.receive_nothing(timeout=timeout))

    async def close(self) -> None:
        await self.comm.disconnect()


async def answer_ping(ws: Any, frame: dict[str, Any]) -> bool:
    """Answer a server `ping` frame with its `pong` (True), or leave any other frame (False)."""
    if frame["type"] != "ping":
        return False
    await ws.send(json.dumps({"type": "pong", "id": frame["id"]}))
    return True


async def recv_live(ws: Any, timeout: float = 10) -> dict[str, Any]:
    """The next frame other than `ping` from a real `websockets` client, within `timeout`
    seconds (pings that arrive meanwhile are answered); TimeoutError otherwise."""
    async with asyncio.timeout(timeout):
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if not await answer_ping(ws, frame):
                return frame


async def next_message(ws: Any, channel: str | None = None, timeout: float = 10) -> dict[str, Any]:
    """The next `message` frame (on `channel` when given) within `timeout` seconds; other
    frames are skipped and pings answered."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await recv_live(ws, timeout)
            if frame["type"] == "message" and channel in (None, frame["channel"]):
                return frame
