"""The prices app's Python API for other apps (alerts, wallets, notifications).

- `PricesPublished`: the event emitted after every price publication (the feed
  process's coalesced flushes, or the REST tick), on `realtime_project.events.bus`.
  Subscribe from your app's `ready()`:
  `bus.subscribe(PricesPublished, handler, name="myapp.x", merge=PricesPublished.merge)`;
  the handler runs on a thread of its own, after the prices went out.
- `latest_price(symbol) -> PriceUpdate | None`: the last published PriceUpdate.
- `latest_prices() -> dict[str, PriceUpdate]`: every active symbol's last PriceUpdate.
- `PriceUpdate`, `PriceBatch`: the payload schemas (`prices/payloads.py`).
- `price_at(symbol, when) -> Decimal | None`: the minute-candle close at `when`
  (from persisted history; None beyond retention or without data).
- `known_symbols() -> set[str]`: the active tracked symbols.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from . import selectors
from .events import PricesPublished
from .payloads import PriceBatch, PriceUpdate

__all__ = ["PriceBatch", "PriceUpdate", "PricesPublished", "known_symbols", "latest_price", "latest_prices", "price_at"]


def latest_price(symbol: str) -> PriceUpdate | None:
    return selectors.latest_price(symbol)


def latest_prices() -> dict[str, PriceUpdate]:
    return selectors.latest_prices()


def price_at(symbol: str, when: datetime) -> Decimal | None:
    return selectors.price_at(symbol, when)


def known_symbols() -> set[str]:
    return selectors.known_symbols()
