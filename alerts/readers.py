"""What the engine reads from other apps: prices and holdings, behind two small protocols.

The defaults call `prices.api` and `wallets.api` (alerts depend on both; neither depends
on alerts). Tests and benchmarks pass their own readers to `AlertEngine`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import prices.api
import wallets.api


class PriceReader(Protocol):
    def price_at(self, symbol: str, when: datetime) -> Decimal | None:
        """The price of `symbol` at `when` (from persisted history), or None."""

    def latest_prices(self) -> dict[str, Decimal]:
        """The newest fresh price of every symbol (stale and degraded ones left out)."""

    def latest_quotes(self) -> dict[str, tuple[float, int | None]]:
        """Every symbol's last published price with its timestamp (ms), stale ones too."""

    def known_symbols(self) -> set[str]:
        """Symbols a rule may name."""


class HoldingsReader(Protocol):
    def holdings(self, user_id: int) -> list[dict[str, Any]]:
        """`[{"chain", "address", "token", "symbol", "amount": Decimal}]` (wallets contract)."""


class PricesAppReader:
    """The prices app's API (`price_at`, `latest_prices`, `known_symbols`)."""

    def price_at(self, symbol: str, when: datetime) -> Decimal | None:
        value = prices.api.price_at(symbol, when)
        return None if value is None else Decimal(str(value))

    def latest_prices(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for symbol, update in prices.api.latest_prices().items():
            if update.get("stale") or update.get("degraded"):
                continue  # never value a portfolio on a stale or degraded price
            price = update.get("price")
            if price is not None:
                out[symbol.upper()] = Decimal(str(price))
        return out

    def latest_quotes(self) -> dict[str, tuple[float, int | None]]:
        """Every symbol's last published price with its timestamp (ms), stale ones too
        (a crossing compares with the previous price, whatever its age)."""
        out: dict[str, tuple[float, int | None]] = {}
        for symbol, update in prices.api.latest_prices().items():
            if update.get("price") is not None:
                ts = update.get("timestamp")
                out[symbol.upper()] = (float(update["price"]), int(ts) if isinstance(ts, (int, float)) else None)
        return out

    def known_symbols(self) -> set[str]:
        return {symbol.upper() for symbol in prices.api.known_symbols()}


class WalletsAppReader:
    """The wallets app's `portfolio_holdings(user_id)`."""

    def holdings(self, user_id: int) -> list[dict[str, Any]]:
        return wallets.api.portfolio_holdings(user_id)
