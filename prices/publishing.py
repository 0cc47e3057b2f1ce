"""Price publications: each PriceUpdate to `prices:{SYMBOL}`, the PriceBatch to `prices`.

A publication (a REST tick, or a coalesced flush of the streams) sends one message per
changed symbol plus the batch, with the gateway's `publish_many`: one pipelined history
round trip and one layer message per gateway process for the whole batch, instead of
two Redis round trips per symbol (500 one-by-one `publish()` calls took 1.8 s in
bench/prices_tick.py). The feed process (async) uses `apublish_prices`.
"""

from __future__ import annotations

from typing import Any

from realtime_project.gateway.api import apublish, apublish_many, publish_many

from .payloads import MarketOverview, PriceBatch, PriceUpdate, price_batch

BATCH_CHANNEL = "prices"
OVERVIEW_CHANNEL = "market:overview"


def symbol_channel(symbol: str) -> str:
    return f"prices:{symbol}"


def _items(updates: list[PriceUpdate], timestamp: int) -> tuple[list[tuple[str, Any]], PriceBatch]:
    batch = price_batch(updates, timestamp)
    items: list[tuple[str, Any]] = [(symbol_channel(u["symbol"]), u) for u in updates]
    items.append((BATCH_CHANNEL, batch))
    return items, batch


def publish_prices(updates: list[PriceUpdate], *, timestamp: int) -> PriceBatch | None:
    """Publish updates and their batch; returns the PriceBatch (None when nothing changed).

    Quiet ticks publish nothing at all: change-driven publishing is the point.
    Raises what `publish_many` raises (TypeError for a non-JSON payload, Redis errors).
    """
    if not updates:
        return None
    items, batch = _items(updates, timestamp)
    publish_many(items)
    return batch


async def apublish_prices(updates: list[PriceUpdate], timestamp: int) -> PriceBatch | None:
    """`publish_prices` from the feed process's event loop."""
    if not updates:
        return None
    items, batch = _items(updates, timestamp)
    await apublish_many(items)
    return batch


async def apublish_overview(payload: MarketOverview) -> None:
    await apublish(OVERVIEW_CHANNEL, payload)
