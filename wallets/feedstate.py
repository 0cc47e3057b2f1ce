"""What the feed process tells the other processes about each chain (through the cache).

Each chain watcher writes, after every scan, its mode (`push`: heads pushed over the
WebSocket; `poll`: the feed polls over HTTP) and its health. Celery beat's
`scan_due_chains` skips a chain the feed process serves, so a chain is never polled
twice; when the feed process stops or dies the entries expire and beat's polling takes
over again by itself (a watcher that stops cleanly removes its entry at once).
`/readyz` and the admin show the entry per chain.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache

KEY = "wallets:feed:{chain_id}"
#: An entry outlives this many scan intervals of its chain (a scan runs at least every
#: `PUSH_SAFETY_INTERVAL` while pushed, every poll interval while polling).
EXPIRY_INTERVALS = 3
MIN_EXPIRY = 30.0


def feed_mark(
    *, chain_id: int, mode: str, interval: float, health: dict[str, Any] | None = None, owner: str = ""
) -> None:
    entry = {"mode": mode, "at": time.time(), "health": health or {}, "owner": owner}
    cache.set(KEY.format(chain_id=chain_id), entry, max(MIN_EXPIRY, EXPIRY_INTERVALS * interval))


def feed_state(*, chain_id: int) -> dict[str, Any] | None:
    value = cache.get(KEY.format(chain_id=chain_id))
    return value if isinstance(value, dict) else None


def feed_serves(*, chain_id: int) -> bool:
    """True while a feed process scans this chain (beat need not)."""
    return feed_state(chain_id=chain_id) is not None


def feed_forget(*, chain_id: int, owner: str = "") -> None:
    """Drop the chain's entry (only if `owner` wrote it, when given: a watcher restarted
    after an admin edit may already have marked the chain again)."""
    key = KEY.format(chain_id=chain_id)
    if owner:
        entry = cache.get(key)
        if not isinstance(entry, dict) or entry.get("owner") != owner:
            return
    cache.delete(key)
