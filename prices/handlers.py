"""Socket side of the prices app: the public `prices`, `prices:{SYMBOL}` and `market:overview` channels.

Snapshot recovery sends a new subscriber the channel's latest publication from the
gateway's history; when history is empty (a fresh Redis, a restarted embedded
server) the `snapshot` hooks below rebuild the latest value from the database.
"""

from __future__ import annotations

import re
from typing import Any

from channels.db import database_sync_to_async

from realtime_project.gateway.namespaces import Namespace, Principal, Recovery, namespaces
from realtime_project.gateway.protocol import ChannelName

from . import selectors
from .payloads import PriceBatch, price_batch

SYMBOL_RE = re.compile(r"^[A-Za-z0-9]{1,20}$")


def _latest_batch() -> PriceBatch | None:
    updates = sorted(selectors.latest_prices().values(), key=lambda u: u["symbol"])
    if not updates:
        return None
    return price_batch(updates, max(int(u.get("timestamp", 0)) for u in updates))


async def prices_snapshot(principal: Principal, channel: ChannelName) -> dict[str, Any] | None:
    """`prices:{SYMBOL}` → its last PriceUpdate; `prices` → a PriceBatch of every symbol."""
    data: dict[str, Any] | None
    if channel.key is None:
        data = await database_sync_to_async(_latest_batch)()
    else:
        data = await database_sync_to_async(selectors.latest_price)(channel.key)
    return data


async def market_snapshot(principal: Principal, channel: ChannelName) -> dict[str, Any] | None:
    data: dict[str, Any] | None = await database_sync_to_async(selectors.market_overview)()
    return data


namespaces.register(
    Namespace(
        name="prices",
        public=True,
        recovery=Recovery.SNAPSHOT,
        key_pattern=SYMBOL_RE,
        key_required=False,  # `prices` alone carries whole batches (issue #4)
        normalise_key=str.upper,
        history_size=100,
        history_ttl=24 * 3600,
        snapshot=prices_snapshot,
        # `prices` (no key) carries batches of what changed in one tick: a new
        # subscriber needs every symbol, which the hook rebuilds, not the last batch.
        snapshot_hook_first=lambda channel: channel.key is None,
    )
)
namespaces.register(
    Namespace(
        name="market",
        public=True,
        recovery=Recovery.SNAPSHOT,
        key_pattern=re.compile(r"^overview$"),
        history_size=20,
        history_ttl=24 * 3600,
        snapshot=market_snapshot,
    )
)
