"""The hub's periodic and long-running loops: layer intake, heartbeats, group refresh."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..direct import SharedFrame
from ..errors import CloseCode, Unavailable
from ..heartbeat import Action, Quality
from ..metrics import LAYER_ERRORS, QUALITY
from ..protocol import error_text, ping_frame

if TYPE_CHECKING:
    from .core import Hub

logger = logging.getLogger("realtime.hub")

#: Group memberships expire in channels-redis (group_expiry, default 1 day): re-add.
GROUP_REFRESH_SECONDS = 3_600.0
#: Seconds between heartbeat checks (at most): fine enough that spread-out pings go out
#: spread out; one check of 5,000 connections costs a few milliseconds.
HEARTBEAT_TICK = 0.25
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


async def heartbeat_loop(hub: Hub) -> None:
    settings = hub.settings
    tick = min(HEARTBEAT_TICK, settings.heartbeat_interval / 4, settings.heartbeat_timeout / 4)
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
    grades = dict.fromkeys(GRADES, 0)
    server_time = int(clock.time() * 1000)
    # Connections that connected together ping together (a reconnect storm aligns a
    # whole fleet): their ping frames are the same bytes (same id, same server_time),
    # so each is built once per tick and written like a fan-out frame, not through an
    # ASGI send per connection (which blocked the loop for tens of ms per burst).
    pings: dict[str, SharedFrame] = {}
    for conn in hub.connections:
        if conn.closing:
            continue
        grades[conn.heartbeat.quality.value] += 1
        action, ping_id = conn.heartbeat.poll(now)
        if action is Action.PING and ping_id is not None:
            frame = pings.get(ping_id)
            if frame is None:
                frame = pings[ping_id] = SharedFrame(ping_frame(ping_id, server_time))
            conn.send_shared(frame)
        elif action is Action.CLOSE:
            logger.info("connection %s: heartbeat timeout, closing", conn.id)
            conn.enqueue(error_text(Unavailable("heartbeat timeout"), None))
            conn.close(CloseCode.HEARTBEAT_TIMEOUT)
    for grade, count in grades.items():
        QUALITY.labels(grade).set(count)


async def refresh_loop(hub: Hub) -> None:
    while True:
        await asyncio.sleep(GROUP_REFRESH_SECONDS)
        await hub.membership.refresh()
