"""Socket side of the wallets app: `wallet:{address}`, only for the user who linked it; durable."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from realtime_project.gateway.health import register_check
from realtime_project.gateway.namespaces import Namespace, Principal, Recovery, namespaces
from realtime_project.gateway.protocol import ChannelName

from .addresses import ADDRESS_RE, checksum


async def owns(principal: Principal, channel: ChannelName) -> bool:
    """Only the user who linked the address may subscribe (the key is already EIP-55)."""
    from .selectors import user_owns_address

    if principal.user_id is None or channel.key is None:
        return False
    allowed: bool = await database_sync_to_async(user_owns_address)(user_id=principal.user_id, address=channel.key)
    return allowed


async def snapshot(principal: Principal, channel: ChannelName) -> dict[str, Any] | None:
    """Rebuild the channel from the database when history cannot recover a resubscriber."""
    from .conf import wallets_settings
    from .selectors import wallet_snapshot

    if channel.key is None:
        return None
    limit = wallets_settings().snapshot_activity
    data: dict[str, Any] = await database_sync_to_async(wallet_snapshot)(address=channel.key, limit=limit)
    return data


def readiness() -> dict[str, Any]:
    from .health import chains_health

    return chains_health()


namespaces.register(
    Namespace(
        name="wallet",
        public=False,
        recovery=Recovery.DURABLE,
        key_pattern=ADDRESS_RE,
        normalise_key=checksum,
        authorise=owns,
        snapshot=snapshot,
        history_size=500,
        history_ttl=7 * 24 * 3600,
    )
)
register_check("wallets", readiness)
