"""Clients for chaos runs (tests/deploy/test_faults.py, bench/soak.py): browser-like
WebSocket clients that keep one socket through the balancer, resubscribe with `since`
after any disconnect, and account for every frame.

Each client behaves like the TypeScript client (client/src/core): it answers pings,
honours `reconnect` frames (a handover, `handover_ms`, make-before-break: the new socket
opens and resubscribes with `since` while the old one still delivers, then the old one is
closed; the same seq arriving on both is dropped, and counted as `handover_duplicates`,
not as a repeat), reconnects with the same full-jitter backoff (first retry
within 250 ms, doubling to a 4 s cap, the attempt counter reset once a socket has lived
5 s: `backoff.ts`, `reconnection.ts`), so availability is what browsers would get, and
resumes each channel from its last `{epoch, seq}`. It records:

- per channel: the last position, seq **gaps** and **repeats** within an epoch, and the
  resets the server announced (`recovered: false`, a new epoch from seq 1): a reset is
  not a gap, the client is told to resync;
- notifications: how many times each notification id arrived live (`created` events):
  0 for one the user was told is **lost**, 2+ is **duplicated**;
- when its data was last fresh, when it lost and regained a subscribed socket (recovery
  time), and delivery latency (now minus the payload's own timestamp, ms).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import websockets

#: Reconnect backoff (full jitter), as the browser client's DEFAULT_BACKOFF
#: (client/src/core/backoff.ts): base, cap (seconds).
BACKOFF_BASE, BACKOFF_CAP = 0.25, 4.0
#: A socket that lived this long resets the attempt counter (the client's STABLE_AFTER_MS).
STABLE_AFTER = 5.0


@dataclass
class Track:
    epoch: str | None = None
    seq: int = 0
    gaps: int = 0
    repeats: int = 0
    resets: int = 0
    messages: int = 0


@dataclass
class Socket:
    """One socket of a client: during a handover there are two."""

    ws: Any
    #: channel -> (epoch, seq) of the newest message taken from this socket.
    last: dict[str, tuple[Any, int]] = field(default_factory=dict)
    #: In a handover (old or new socket): a seq the other socket delivered first is no repeat.
    overlap: bool = False


@dataclass
class Client:
    index: int
    url: str
    channels: list[str]
    #: A fresh `?ticket=` query per connect (None: anonymous).
    ticket: Callable[[], str] | None = None
    tracks: dict[str, Track] = field(default_factory=dict)
    notifications: Counter[str] = field(default_factory=Counter)
    #: Delivery latency (ms) of prices and overviews (from their timestamp), and of
    #: notifications (from the publisher's `data.sent_ms`).
    latencies: list[float] = field(default_factory=list)
    note_latencies: list[float] = field(default_factory=list)
    #: (lost at, back at) monotonic: a subscribed socket lost, then every channel subscribed again.
    outages: list[tuple[float, float | None]] = field(default_factory=list)
    connects: int = 0
    #: Each reconnection after a lost subscribed socket, split in phases (monotonic):
    #: (lost, connect started, socket open, every channel subscribed again).
    reconnects: list[tuple[float, float, float, float]] = field(default_factory=list)
    _lost_at: float | None = None
    _connect_at: float = 0.0
    _open_at: float = 0.0
    #: monotonic time of the last data frame per channel.
    fresh_at: dict[str, float] = field(default_factory=dict)
    #: monotonic times of the `prices:*` messages (a price's silences).
    price_times: list[float] = field(default_factory=list)
    subscribed: set[str] = field(default_factory=set)
    errors: Counter[str] = field(default_factory=Counter)
    #: Handovers completed (moved to a new socket with no outage), and the messages that
    #: arrived on both sockets during one (dropped, as the browser client drops them).
    handovers: int = 0
    handover_duplicates: int = 0
    _stop: bool = False

    # --- state ---------------------------------------------------------------------------

    @property
    def live(self) -> bool:
        return len(self.subscribed) == len(self.channels)

    def fresh(self, now: float, max_age: float, *, any_channel: bool = False) -> bool:
        """A live socket subscribed to all its channels whose data is no older than
        `max_age`: on every channel, or (`any_channel`) its newest data on any of them."""
        if not self.live:
            return False
        ages = [now - self.fresh_at.get(ch, -1e9) for ch in self.channels]
        return (min(ages) if any_channel else max(ages)) <= max_age

    def stop(self) -> None:
        self._stop = True

    # --- the protocol ----------------------------------------------------------------------

    def _on_subscribed(self, frame: dict[str, Any], now: float) -> None:
        channel = frame["channel"]
        track = self.tracks.setdefault(channel, Track())
        if track.epoch is not None and frame.get("recovered") is False:
            track.resets += 1
        if frame.get("recovered") is not True:
            track.epoch, track.seq = frame.get("epoch"), int(frame.get("seq") or 0)
        self.subscribed.add(channel)
        self.fresh_at[channel] = now
        if self.live and self.outages and self.outages[-1][1] is None:
            self.outages[-1] = (self.outages[-1][0], now)
        if self.live and self._lost_at is not None:
            self.reconnects.append((self._lost_at, self._connect_at, self._open_at, now))
            self._lost_at = None

    def _on_message(self, frame: dict[str, Any], now: float, sock: Socket | None = None) -> None:
        channel = frame.get("channel")
        if channel not in self.tracks:
            return
        track = self.tracks[channel]
        self.fresh_at[channel] = now
        if channel.startswith("prices:"):
            self.price_times.append(now)
        seq, epoch = frame.get("seq"), frame.get("epoch")
        if frame.get("snapshot"):
            track.epoch, track.seq = epoch, int(seq or 0)
            return
        if isinstance(seq, int):
            if epoch != track.epoch:
                if track.epoch is not None:
                    track.resets += 1
                if seq != 1:
                    track.gaps += 1
                track.epoch = epoch
            elif seq <= track.seq:
                seen = sock.last.get(channel) if sock is not None else None
                if sock is not None and sock.overlap and (seen is None or seen[0] != epoch or seen[1] < seq):
                    self.handover_duplicates += 1  # the other socket of the handover had it
                else:
                    track.repeats += 1
                return
            elif seq != track.seq + 1:
                track.gaps += 1
            track.seq = seq
            if sock is not None:
                sock.last[channel] = (epoch, seq)
        track.messages += 1
        data = frame.get("data")
        if not isinstance(data, dict):
            return
        if data.get("event") == "created" and isinstance(data.get("notification"), dict):
            note = data["notification"]
            self.notifications[str(note.get("id"))] += 1
            sent = (note.get("data") or {}).get("sent_ms")
            if isinstance(sent, (int, float)) and sent > 0:
                self.note_latencies.append(time.time() * 1000 - sent)
            return
        stamp = data.get("timestamp")
        if isinstance(stamp, (int, float)) and stamp > 0:
            self.latencies.append(time.time() * 1000 - stamp)

    async def _connect(self) -> Socket:
        """A new socket, with every channel subscribed (with `since` where a position is known)."""
        url = self.url if self.ticket is None else f"{self.url}?ticket={self.ticket()}"
        # proxy=None: no proxy lookup in the environment per connect (harness cost, not the product).
        ws = await websockets.connect(url, open_timeout=10, max_size=2**22, proxy=None)
        self.connects += 1
        for channel in self.channels:
            track = self.tracks.get(channel)
            frame: dict[str, Any] = {"type": "subscribe", "id": channel, "channel": channel}
            if track is not None and track.epoch is not None:
                frame["since"] = {"epoch": track.epoch, "seq": track.seq}
            await ws.send(json.dumps(frame))
        return Socket(ws)

    async def _session(self) -> float | None:
        """One session: a socket, then each socket a handover moves it to; returns the
        server's reconnect delay (s), if it gave one."""
        self._connect_at = time.monotonic()
        sock = await self._connect()
        self._open_at = time.monotonic()
        try:
            while True:
                result = await self._pump(sock)
                if not isinstance(result, Socket):
                    return result
                sock = result  # handed over: the session goes on with no outage
        finally:
            await sock.ws.close()

    async def _pump(self, sock: Socket) -> float | Socket | None:
        """Read `sock` until it ends; a finished handover returns the new socket."""
        moving: asyncio.Task[Socket | None] | None = None
        try:
            async for raw in sock.ws:
                if self._stop:
                    return None
                frame = json.loads(raw)
                kind, now = frame.get("type"), time.monotonic()
                if kind == "reconnect" and frame.get("handover_ms"):
                    if moving is None:
                        sock.overlap = True
                        moving = asyncio.create_task(self._handover())
                elif kind == "reconnect":
                    return float(frame.get("after_ms") or 0) / 1000
                else:
                    await self._take(sock, frame, now)
                if moving is not None and moving.done():
                    new = moving.result() if not moving.exception() else None
                    moving = None
                    if new is not None:
                        await sock.ws.close()
                        self.handovers += 1
                        return new
        except websockets.ConnectionClosed:
            pass
        finally:
            if moving is not None and not moving.done() and self._stop:
                moving.cancel()
        if moving is None or self._stop:
            return None
        # The old socket ended before the new one was subscribed everywhere (the server's
        # handover deadline): an outage until it is, as for any lost socket.
        now = time.monotonic()
        if self.live:
            self.outages.append((now, None))
            self._lost_at = self._connect_at = self._open_at = now
        self.subscribed.clear()
        try:
            new = await moving
        except (OSError, websockets.WebSocketException, TimeoutError):
            new = None
        if new is None:
            return None
        self.handovers += 1
        for channel in self.channels:  # every one is subscribed on the new socket
            self._on_subscribed({"channel": channel, "recovered": True}, time.monotonic())
        return new

    async def _take(self, sock: Socket, frame: dict[str, Any], now: float) -> None:
        """What every socket of the client does with a frame (but `reconnect`)."""
        kind = frame.get("type")
        if kind == "message":
            self._on_message(frame, now, sock)
        elif kind == "ping":
            await sock.ws.send(json.dumps({"type": "pong", "id": frame.get("id")}))
        elif kind == "subscribed":
            self._on_subscribed(frame, now)
        elif kind == "error":
            self.errors[str(frame.get("code"))] += 1

    async def _handover(self) -> Socket | None:
        """Open the new socket and read it until every channel is subscribed on it."""
        try:
            new = await self._connect()
        except (OSError, websockets.WebSocketException, TimeoutError) as exc:
            self.errors[f"handover:{type(exc).__name__}"] += 1
            return None
        new.overlap = True
        subscribed: set[str] = set()
        try:
            async for raw in new.ws:
                frame = json.loads(raw)
                kind, now = frame.get("type"), time.monotonic()
                await self._take(new, frame, now)
                if kind == "subscribed":
                    subscribed.add(frame["channel"])
                    if len(subscribed) == len(self.channels):
                        return new
        except websockets.ConnectionClosed:
            pass
        await new.ws.close()
        return None

    async def run(self) -> None:
        attempt = 0
        while not self._stop:
            delay: float | None = None
            connects, started = self.connects, time.monotonic()
            try:
                delay = await self._session()
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                self.errors[type(exc).__name__] += 1
            except asyncio.CancelledError:
                raise
            if self.connects > connects and time.monotonic() - started >= STABLE_AFTER:
                attempt = 0  # a socket that lived: the next drop retries fast again
            if self.live:
                self.outages.append((time.monotonic(), None))
                self._lost_at = self.outages[-1][0]
            self.subscribed.clear()
            if self._stop:
                return
            if delay is None:
                delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))
                attempt += 1
            await asyncio.sleep(min(delay, 5.0))


async def stop_all(clients: list[Client], tasks: list[asyncio.Task[Any]]) -> None:
    """Stop the clients and cancel their tasks (and any other of the run's), then wait."""
    for client in clients:
        client.stop()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def recovery_times(clients: list[Client], since: float = 0.0) -> list[float]:
    """Seconds from losing a subscribed socket to every channel subscribed again."""
    return [back - lost for c in clients for lost, back in c.outages if back is not None and lost >= since]


def summary(clients: list[Client]) -> dict[str, Any]:
    tracks = [t for c in clients for t in c.tracks.values()]
    return {
        "clients": len(clients),
        "live": sum(c.live for c in clients),
        "messages": sum(t.messages for t in tracks),
        "gaps": sum(t.gaps for t in tracks),
        "repeats": sum(t.repeats for t in tracks),
        "resets": sum(t.resets for t in tracks),
        "connects": sum(c.connects for c in clients),
        "handovers": sum(c.handovers for c in clients),
        "handover_duplicates": sum(c.handover_duplicates for c in clients),
        "errors": dict(sum((c.errors for c in clients), Counter())),
    }
