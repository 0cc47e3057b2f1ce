"""The prices app's Python API for other apps (alerts, wallets, notifications).

- `register_batch_listener(fn)`: `fn(batch)` runs with each PriceBatch after it is
  published, in the process that ran the tick; a listener's exception is logged and
  never breaks the tick. Register from your app's `ready()`.
- `latest_price(symbol) -> dict | None`: the last published PriceUpdate.
- `latest_prices() -> dict[str, dict]`: every active symbol's last PriceUpdate.
- `price_at(symbol, when) -> Decimal | None`: the minute-candle close at `when`
  (from persisted history; None beyond retention or without data).
- `known_symbols() -> set[str]`: the active tracked symbols.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from . import selectors
from .listeners import BatchListener, register_batch_listener, unregister_batch_listener

__all__ = [
    "BatchListener",
    "known_symbols",
    "latest_price",
    "latest_prices",
    "price_at",
    "register_batch_listener",
    "unregister_batch_listener",
]


def latest_price(symbol: str) -> dict[str, Any] | None:
    return selectors.latest_price(symbol)


def latest_prices() -> dict[str, dict[str, Any]]:
    return selectors.latest_prices()


def price_at(symbol: str, when: datetime) -> Decimal | None:
    return selectors.price_at(symbol, when)


def known_symbols() -> set[str]:
    return selectors.known_symbols()
