"""Hub intake over Redis pub/sub: one connection per gateway process, read in batches.

channels-redis' core layer hands the hub one message per Redis round trip (BZPOPMIN),
which capped a gateway at a few thousand publications/s and let its inbox fall seconds
behind (issue #10). Here the process subscribes once per joined group to the group's
pub/sub channel as channels-redis' `RedisPubSubChannelLayer` names it, so the publish
script (`history_redis.py`) and any `group_send` through that layer reach it alike;
Redis pushes publications as they happen, and every socket read is parsed whole: one
read can carry hundreds of publications, handed to the hub synchronously, with no task,
queue or round trip per message.

Pub/sub is at-most-once: a message published while the connection is down is lost.
After every reconnect the hub re-reads each joined channel's position from history and
repairs what it missed (`Sequencer.observe`); a new epoch is delivered from seq 1.
Liveness: a PING every `PING_INTERVAL`; no reply within `PING_TIMEOUT` drops the
connection (a silently dead peer) and the intake reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from ...clock import SYSTEM_CLOCK, Clock

logger = logging.getLogger("realtime.hub")

PING_INTERVAL = 1.0
PING_TIMEOUT = 3.0
RETRY_MIN, RETRY_MAX = 0.1, 2.0
CONNECT_TIMEOUT = 2.0

OnMessage = Callable[[bytes, bytes], None]


def command(*parts: str | bytes) -> bytes:
    """A RESP2 command (array of bulk strings)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class RespParser:
    """Incremental RESP2 parser for a subscribed connection (arrays, bulk, integers,
    simple strings, errors). `feed` returns every complete reply in the buffer."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        buf = self._buf
        buf += data
        out: list[Any] = []
        pos = 0
        parse = self._parse
        while pos < len(buf):
            parsed = parse(buf, pos)
            if parsed is None:
                break
            value, pos = parsed
            out.append(value)
        if pos:
            del buf[:pos]
        return out

    def _parse(self, buf: bytearray, pos: int) -> tuple[Any, int] | None:
        end = buf.find(b"\r\n", pos)
        if end < 0:
            return None
        kind = buf[pos]
        if kind == 0x24:  # $ bulk string
            length = int(buf[pos + 1 : end])
            if length < 0:
                return None, end + 2
            start = end + 2
            stop = start + length
            if len(buf) < stop + 2:
                return None
            return bytes(buf[start:stop]), stop + 2
        if kind == 0x2A:  # * array
            count = int(buf[pos + 1 : end])
            pos = end + 2
            items: list[Any] = []
            for _ in range(max(count, 0)):
                parsed = self._parse(buf, pos)
                if parsed is None:
                    return None
                item, pos = parsed
                items.append(item)
            return items, pos
        if kind == 0x3A:  # : integer
            return int(buf[pos + 1 : end]), end + 2
        if kind == 0x2B:  # + simple string
            return bytes(buf[pos + 1 : end]), end + 2
        if kind == 0x2D:  # - error
            return RuntimeError(bytes(buf[pos + 1 : end]).decode(errors="replace")), end + 2
        raise ValueError(f"unexpected RESP type byte {kind!r}")


class _Protocol(asyncio.Protocol):
    def __init__(self, intake: PubSubIntake) -> None:
        self.intake = intake
        self.parser = RespParser()
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance check.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        intake = self.intake
        intake.last_reply = intake.clock.monotonic()
        for reply in self.parser.feed(data):
            if type(reply) is list and reply and reply[0] == b"message":
                try:
                    intake.on_message(reply[1], reply[2])
                except Exception:
                    logger.exception("hub failed to handle a publication")
            else:
                intake.on_reply(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


class PubSubIntake:
    """Keeps one subscribed Redis connection, re-subscribing after every reconnect."""

    def __init__(
        self,
        url: str,
        on_message: OnMessage,
        *,
        on_up: Callable[[bool], Any],
        on_down: Callable[[Exception | None], None],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.tls = parts.scheme == "rediss"
        self.on_message = on_message
        self.on_up = on_up
        self.on_down = on_down
        self.clock = clock
        self.channels: set[str] = set()
        self.last_reply = 0.0
        self._proto: _Protocol | None = None
        self._confirm: dict[bytes, list[asyncio.Future[None]]] = {}
        self._connected_once = False
        self.up = False

    # --- membership ---------------------------------------------------------------------

    async def subscribe(self, channel: str) -> None:
        """Subscribe; returns once Redis confirmed it (so nothing published after is missed)."""
        if self._proto is None or self._proto.transport is None or not self.up:
            raise ConnectionError("Redis pub/sub connection is down")
        self.channels.add(channel)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirm.setdefault(channel.encode(), []).append(waiter)
        self._proto.transport.write(command("SUBSCRIBE", channel))
        try:
            await asyncio.wait_for(waiter, CONNECT_TIMEOUT)
        except BaseException:
            self.channels.discard(channel)
            raise

    async def unsubscribe(self, channel: str) -> None:
        self.channels.discard(channel)
        if self._proto is not None and self._proto.transport is not None and self.up:
            self._proto.transport.write(command("UNSUBSCRIBE", channel))

    def on_reply(self, reply: Any) -> None:
        if type(reply) is list and len(reply) == 3 and reply[0] == b"subscribe":
            for waiter in self._confirm.pop(reply[1], ()):
                if not waiter.done():
                    waiter.set_result(None)
        elif isinstance(reply, RuntimeError):
            logger.warning("Redis pub/sub error reply: %s", reply)

    # --- connection -----------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, subscribe, read until the connection drops; reconnect forever."""
        delay = RETRY_MIN
        while True:
            error: Exception | None = None
            try:
                proto = await self._connect()
                delay = RETRY_MIN
                error = await self._serve(proto)
            except asyncio.CancelledError:
                self._close()
                raise
            except Exception as exc:
                error = exc
            self._close()
            if self.up or not self._connected_once:
                self.up = False
                self.on_down(error)
            self._connected_once = True
            for waiters in self._confirm.values():
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(ConnectionError("Redis pub/sub connection lost"))
            self._confirm.clear()
            await asyncio.sleep(delay)
            delay = min(RETRY_MAX, delay * 2)

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        context = ssl.create_default_context() if self.tls else None
        _, proto = await asyncio.wait_for(
            loop.create_connection(lambda: _Protocol(self), self.host, self.port, ssl=context), CONNECT_TIMEOUT
        )
        transport = proto.transport
        assert transport is not None
        self._proto = proto
        if self.password is not None:
            auth = ("AUTH", self.username, self.password) if self.username else ("AUTH", self.password)
            transport.write(command(*auth))
        channels = sorted(self.channels)
        waiters = []
        for channel in channels:
            waiter: asyncio.Future[None] = loop.create_future()
            self._confirm.setdefault(channel.encode(), []).append(waiter)
            waiters.append(waiter)
        if channels:
            transport.write(command("SUBSCRIBE", *channels))
        else:
            transport.write(command("PING"))
        self.last_reply = 0.0
        if waiters:
            await asyncio.wait_for(asyncio.gather(*waiters), CONNECT_TIMEOUT * 5)
        else:
            deadline = loop.time() + CONNECT_TIMEOUT
            while not self.last_reply:
                if proto.lost.done() or loop.time() > deadline:
                    raise ConnectionError("no answer from Redis")
                await asyncio.sleep(0.01)
        return proto

    async def _serve(self, proto: _Protocol) -> Exception | None:
        reconnected = self._connected_once
        self._connected_once = True
        self.up = True
        result = self.on_up(reconnected)
        if asyncio.iscoroutine(result):
            await result
        transport = proto.transport
        assert transport is not None
        while not proto.lost.done():
            sent = self.clock.monotonic()
            transport.write(command("PING"))
            done, _ = await asyncio.wait({proto.lost}, timeout=PING_INTERVAL)
            if done:
                break
            if self.clock.monotonic() - max(self.last_reply, sent) > PING_TIMEOUT - PING_INTERVAL:
                transport.abort()
                return TimeoutError(f"no reply from Redis in {PING_TIMEOUT}s")
        return proto.lost.result()

    def _close(self) -> None:
        proto, self._proto = self._proto, None
        if proto is not None and proto.transport is not None:
            proto.transport.abort()
