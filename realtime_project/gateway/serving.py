"""The hub a gateway serves from: the running loop's hub, started on first use together
with the loops that run beside it (session revalidation; presence and rebalancing, with
Redis).

Only gateways (the consumer, the server's start-up) import this module. The runtime
module below it keeps the hub and is imported by publishers and by presence's readers
too, so it starts none of these loops itself: presence depends on the runtime (the
process's hubs, in embedded mode), never the other way round.
"""

from __future__ import annotations

from .auth import revalidate
from .conf import gateway_settings
from .hub import Hub
from .presence import CLIENT as PRESENCE_CLIENT
from .presence import presence_loop
from .rebalance import rebalance_loop
from .revalidation import revalidation_loop
from .runtime import HUB


async def get_hub() -> Hub:
    """The started hub of the running loop (created on first use)."""
    hub = HUB.get()
    if not hub.started:
        await hub.start()
        hub.spawn(revalidation_loop(hub, revalidate), "hub-revalidate")
        if gateway_settings().history_redis_url:
            hub.spawn(presence_loop(hub), "hub-presence")
            if gateway_settings().rebalance_interval > 0:
                hub.spawn(rebalance_loop(hub, PRESENCE_CLIENT.get()), "hub-rebalance")
    return hub
