"""Signed-in connections are re-validated at least once per heartbeat interval.

Revocation messages (`api.end_sessions`) end sockets within milliseconds, but some ends
send no message: a session that expired, a token or user deleted with a bulk query, a
message lost while Redis was away. So every signed-in connection's user and credential
are checked again once per `HEARTBEAT_INTERVAL` (docs/protocol.md "Sessions end"):
connections that came due are checked together each tick, one database thread hop per
tick, each distinct (user, credential) once. A database error skips the round (the
sockets stay; the next tick tries again) rather than closing everyone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .credentials import Credential
from .hub.revocation import end_session

if TYPE_CHECKING:
    from .connections import Connection
    from .hub import Hub

logger = logging.getLogger("realtime.gateway")

Key = tuple[int, Credential | None]
Validator = Callable[[list[Key]], Awaitable[set[Key]]]

#: Seconds between rounds; each round checks the connections that came due.
TICK = 1.0


def due(connections: list[Connection], now: float, interval: float) -> list[Connection]:
    """Signed-in, open connections last validated at least `interval` seconds ago."""
    return [
        c for c in connections if c.principal.user_id is not None and not c.closing and now - c.validated_at >= interval
    ]


async def revalidate_once(hub: Hub, validate: Validator) -> int:
    """Check the connections that are due; end those whose credential no longer holds."""
    now = hub.clock.monotonic()
    conns = due(list(hub.connections), now, hub.settings.heartbeat_interval)
    if not conns:
        return 0
    keys = {(c.principal.user_id, c.credential) for c in conns if c.principal.user_id is not None}
    try:
        ended = await validate(list(keys))
    except Exception as exc:
        logger.warning("re-validation of %d connection(s) skipped: %s", len(conns), exc)
        return 0
    closed = 0
    for conn in conns:
        conn.validated_at = now
        if (conn.principal.user_id, conn.credential) in ended:
            closed += end_session(conn, "session_ended")
    if closed:
        logger.info("%d connection(s) ended: their session no longer authenticates", closed)
    return closed


async def revalidation_loop(hub: Hub, validate: Validator, tick: float = TICK) -> None:
    tick = min(tick, hub.settings.heartbeat_interval / 4)
    while True:
        await asyncio.sleep(tick)
        try:
            await revalidate_once(hub, validate)
        except Exception:
            logger.exception("re-validation failed")
