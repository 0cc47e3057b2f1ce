"""Socket side of the wallets app: `wallet:{address}`, only for a user who linked it; durable.

Who gets what (docs/wallets.md "Who sees what"): a user who proved they own the address
(a verified link) subscribes to the address's full channel; a user who linked it
watch-only (no proof: anyone can watch any address) gets `wallet_public:{address}`
under the same client-visible name: public chain activity only (balances, transfers,
approvals and their warnings, NFTs, internal transfers, history backfill), never the
transaction-watch frames or the pending transactions of the proven owner.
"""

from __future__ import annotations

from channels.db import database_sync_to_async

from realtime_project.gateway.namespaces import Namespace, Principal, Recovery, namespaces
from realtime_project.gateway.protocol import ChannelName

from .addresses import ADDRESS_RE, checksum
from .conf import wallets_settings
from .payloads import WalletSnapshot
from .selectors import link_of, public_snapshot, wallet_snapshot

PUBLIC_NAMESPACE = "wallet_public"


async def owns(principal: Principal, channel: ChannelName) -> bool | ChannelName:
    """A user who linked the address may subscribe (the key is already EIP-55): the full
    channel with a verified link, its public part with a watch-only one."""
    if principal.user_id is None or channel.key is None:
        return False
    link = await database_sync_to_async(link_of)(user_id=principal.user_id, address=channel.key)
    if link is None:
        return False
    return channel if link == "verified" else ChannelName(PUBLIC_NAMESPACE, channel.key)


async def snapshot(principal: Principal, channel: ChannelName) -> WalletSnapshot | None:
    """Rebuild the channel from the database when history cannot recover a resubscriber
    (`channel` is the internal one: the public part gets the public snapshot)."""
    if channel.key is None:
        return None
    limit = wallets_settings().snapshot_activity
    data = await database_sync_to_async(wallet_snapshot)(address=channel.key, limit=limit)
    return public_snapshot(data) if channel.namespace == PUBLIC_NAMESPACE else data


async def _linked(principal: Principal, channel: ChannelName) -> bool | ChannelName:
    """Any link (verified or watch-only) may follow the public part of an address."""
    allowed = await owns(principal, channel)
    return False if allowed is False else ChannelName(PUBLIC_NAMESPACE, channel.key)


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
# The public part of an address's activity, for watch-only links (`owns` hands it out
# under the client's `wallet:` name; subscribing to it by this name directly is the same).
namespaces.register(
    Namespace(
        name=PUBLIC_NAMESPACE,
        public=False,
        recovery=Recovery.DURABLE,
        key_pattern=ADDRESS_RE,
        normalise_key=checksum,
        authorise=lambda principal, channel: _linked(principal, channel),
        snapshot=snapshot,
        history_size=500,
        history_ttl=7 * 24 * 3600,
    )
)
