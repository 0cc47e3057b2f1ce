"""One batch per tick: each PriceUpdate to `prices:{SYMBOL}`, the PriceBatch to `prices`.

A tick publishes up to one message per tracked symbol plus the batch. They go out with
the gateway's `publish_many`: one pipelined history round trip and one layer message per
gateway process for the whole tick, instead of two Redis round trips per symbol (500
one-by-one `publish()` calls took 1.8 s in bench/prices_tick.py).
"""

from __future__ import annotations

from typing import Any

from realtime_project.gateway.api import publish_many

BATCH_CHANNEL = "prices"


def symbol_channel(symbol: str) -> str:
    return f"prices:{symbol}"


def publish_prices(updates: list[dict[str, Any]], *, timestamp: int) -> dict[str, Any] | None:
    """Publish this tick's updates and batch; returns the PriceBatch (None when nothing changed).

    Quiet ticks publish nothing at all: change-driven publishing is the point.
    Raises what `publish_many` raises (TypeError for a non-JSON payload, Redis errors).
    """
    if not updates:
        return None
    batch = {"updates": updates, "timestamp": timestamp}
    items: list[tuple[str, Any]] = [(symbol_channel(u["symbol"]), u) for u in updates]
    items.append((BATCH_CHANNEL, batch))
    publish_many(items)
    return batch
