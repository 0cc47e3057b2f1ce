"""The hub's periodic and long-running loops: layer intake, heartbeats, group refresh."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING

from ..direct import SharedFrame
from ..errors import CloseCode, Unavailable
from ..heartbeat import Action, Quality
from ..metrics import LAYER_ERRORS, OUT_ERROR, OUT_PING, QUALITY
from ..protocol import error_text, ping_frame

if TYPE_CHECKING:
    from ..conf import GatewaySettings
    from ..connections import Connection
    from .core import Hub

logger = logging.getLogger("realtime.hub")

#: Group memberships expire in channels-redis (group_expiry, default 1 day): re-add.
GROUP_REFRESH_SECONDS = 3_600.0
#: Seconds between heartbeat checks (at most): fine enough that spread-out pings go out
#: spread out; one check of 5,000 connections costs a few milliseconds.
HEARTBEAT_TICK = 0.25
#: Seconds between two counts of connections by quality grade (a gauge: a pass over
#: every connection, so not at every heartbeat tick).
QUALITY_EVERY = 5.0
#: Back-off bounds while the channel layer is unreachable.
LAYER_RETRY_MIN, LAYER_RETRY_MAX = 0.2, 5.0
GRADES = tuple(q.value for q in Quality)


async def receive_loop(hub: Hub) -> None:
    """Take layer messages for this process's channel and hand them to the hub."""
    delay = LAYER_RETRY_MIN
    layer, channel_name = hub.layer, hub.membership.channel_name
    while True:
        try:
            message = await layer.receive(channel_name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if hub.layer_ok:
                LAYER_ERRORS.inc()
                logger.error("channel layer unreachable; connections stay open, retrying: %s", exc)
                hub.layer_ok = False
            await asyncio.sleep(delay)
            delay = min(LAYER_RETRY_MAX, delay * 2)
            # A restarted Redis has lost our group memberships: re-join them as the
            # probe, so delivery resumes without waiting for a message that can't come.
            if await hub.membership.refresh():
                logger.info("channel layer reachable again; re-joined %d groups", len(hub.membership.groups))
                hub.layer_ok = True
                delay = LAYER_RETRY_MIN
            continue
        try:
            await hub.handle(message)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("hub failed to handle a layer message")


def heartbeat_tick(settings: GatewaySettings) -> float:
    return min(HEARTBEAT_TICK, settings.heartbeat_interval / 4, settings.heartbeat_timeout / 4)


class HeartbeatWheel:
    """Connections filed by the tick at which their heartbeat next needs a look.

    A check visits only the connections that are due (a ping to send or a timeout to
    enforce), not every connection every tick: 5,000 connections pinged every 5 s cost
    ~1,000 visits per second instead of 20,000. Each connection is filed once (when it
    is added, then again after each visit, at `Heartbeat.due_at`); a pong only moves
    that time later, so a connection is never visited late, at worst once too early.
    """

    __slots__ = ("slots", "tick")

    def __init__(self, tick: float) -> None:
        self.tick = tick
        self.slots: dict[int, list[Connection]] = {}

    def file(self, conn: Connection, at: float) -> None:
        # The first slot that starts at or after `at`: visited no earlier than `at`.
        slot = math.ceil(at / self.tick)
        bucket = self.slots.get(slot)
        if bucket is None:
            self.slots[slot] = [conn]
        else:
            bucket.append(conn)

    def due(self, now: float) -> list[Connection]:
        """Remove and return the connections filed at or before `now`, earliest first."""
        current = math.floor(now / self.tick)
        ready = sorted(slot for slot in self.slots if slot <= current)
        out: list[Connection] = []
        for slot in ready:
            out += self.slots.pop(slot)
        return out

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self.slots.values())


async def heartbeat_loop(hub: Hub) -> None:
    tick = heartbeat_tick(hub.settings)
    while True:
        await asyncio.sleep(tick)
        try:
            check_heartbeats(hub)
        except Exception:
            logger.exception("heartbeat check failed")


def check_heartbeats(hub: Hub) -> None:
    """Ping the connections that are due, close those whose ping went unanswered."""
    clock = hub.clock
    now = clock.monotonic()
    server_time = int(clock.time() * 1000)
    # Connections that connected together ping together (a reconnect storm aligns a
    # whole fleet): their ping frames are the same bytes (same id, same server_time),
    # so each is built once per tick and written like a fan-out frame, not through an
    # ASGI send per connection (which blocked the loop for tens of ms per burst).
    pings: dict[str, SharedFrame] = {}
    wheel = hub.heartbeats
    connections = hub.connections
    for conn in wheel.due(now):
        if conn.closing or connections.get(conn.id) is not conn:
            continue  # closed or gone: filed no more
        heartbeat = conn.heartbeat
        action, ping_id = heartbeat.poll(now)
        if action is Action.PING and ping_id is not None:
            frame = pings.get(ping_id)
            if frame is None:
                frame = pings[ping_id] = SharedFrame(ping_frame(ping_id, server_time))
            if conn.send_shared(frame):
                OUT_PING.inc()
        elif action is Action.CLOSE:
            logger.info("connection %s: heartbeat timeout, closing", conn.id)
            if conn.enqueue(error_text(Unavailable("heartbeat timeout"), None)):
                OUT_ERROR.inc()
            conn.close(CloseCode.HEARTBEAT_TIMEOUT)
            continue
        wheel.file(conn, heartbeat.due_at())
    if now >= hub.quality_due:
        hub.quality_due = now + QUALITY_EVERY
        count_quality(hub)


def count_quality(hub: Hub) -> None:
    """Set the quality gauge: open connections by heartbeat grade."""
    grades = dict.fromkeys(GRADES, 0)
    for conn in hub.connections:
        if not conn.closing:
            grades[conn.heartbeat.quality.value] += 1
    for grade, count in grades.items():
        QUALITY.labels(grade).set(count)


async def refresh_loop(hub: Hub) -> None:
    while True:
        await asyncio.sleep(GROUP_REFRESH_SECONDS)
        await hub.membership.refresh()
