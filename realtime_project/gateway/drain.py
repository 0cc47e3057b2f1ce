"""Graceful drain: tell every client to reconnect elsewhere, flush, close with 1012.

Each client gets `{"type":"reconnect","reason":…,"after_ms":…}` with its own random
delay in [0, DRAIN_MAX_DELAY_MS) so a fleet restart does not become a reconnect storm;
frames already queued are flushed first, then the close (1012 "service restart").
"""

from __future__ import annotations

import asyncio
import logging
import random

from .conf import gateway_settings
from .errors import CloseCode
from .hub import Hub
from .metrics import OUT_RECONNECT
from .protocol import reconnect_frame

logger = logging.getLogger("realtime.drain")


async def drain(hub: Hub, reason: str = "server_restart", rng: random.Random | None = None) -> int:
    """Drain every connection of `hub`; returns how many were told to reconnect."""
    settings = gateway_settings()
    rng = rng or random.Random()
    hub.draining = True
    conns = list(hub.connections)
    for conn in conns:
        after_ms = int(rng.uniform(0, settings.drain_max_delay_ms))
        if conn.enqueue(reconnect_frame(reason, after_ms)):
            OUT_RECONNECT.inc()
        conn.close(CloseCode.SERVICE_RESTART)
    if conns:
        await asyncio.gather(*(c.wait_closed(settings.drain_grace_seconds) for c in conns))
    try:
        from .presence import withdraw

        await withdraw()
    except Exception as exc:  # Redis may be the reason we stop; entries expire anyway
        logger.info("presence withdraw failed: %s", exc)
    logger.info("drained %d connections (%s)", len(conns), reason)
    return len(conns)
