"""Where the engine reads prices and holdings: an interface, with defaults backed by the
prices and wallets apps (built in parallel, so imported lazily and defensively)."""

from __future__ import annotations

import importlib
import logging
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from .conf import alert_settings

logger = logging.getLogger("alerts.sources")


class PriceSource(Protocol):
    def price_at(self, symbol: str, when: datetime) -> Decimal | None:
        """The price of `symbol` at `when` (from persisted history), or None."""

    def latest_prices(self) -> dict[str, Decimal]:
        """The newest fresh price of every symbol (stale and degraded ones left out)."""

    def known_symbols(self) -> set[str]:
        """Symbols a rule may name."""


class HoldingsSource(Protocol):
    def holdings(self, user_id: int) -> list[dict[str, Any]]:
        """`[{"chain", "address", "token", "symbol", "amount": Decimal}]` (wallets contract)."""


def optional_api(module: str) -> Any:
    """Another app's `api` module, or None while that app has not provided it yet."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _prices_api() -> Any:
    return optional_api("prices.api")


class PricesAppSource:
    """The prices app's API (`price_at`, `latest_prices`, `known_symbols`)."""

    def price_at(self, symbol: str, when: datetime) -> Decimal | None:
        fn = getattr(_prices_api(), "price_at", None)
        if fn is None:
            return None
        value = fn(symbol, when)
        return None if value is None else Decimal(str(value))

    def latest_prices(self) -> dict[str, Decimal]:
        fn = getattr(_prices_api(), "latest_prices", None)
        if fn is None:
            return {}
        out: dict[str, Decimal] = {}
        for symbol, update in (fn() or {}).items():
            if isinstance(update, dict) and (update.get("stale") or update.get("degraded")):
                continue  # never value a portfolio on a stale or degraded price
            price = update.get("price") if isinstance(update, dict) else update
            if price is not None:
                out[str(symbol).upper()] = Decimal(str(price))
        return out

    def latest_quotes(self) -> dict[str, tuple[float, int | None]]:
        """Every symbol's last published price with its timestamp (ms), stale ones too
        (a crossing compares with the previous price, whatever its age)."""
        fn = getattr(_prices_api(), "latest_prices", None)
        out: dict[str, tuple[float, int | None]] = {}
        for symbol, update in ((fn() or {}) if fn is not None else {}).items():
            if isinstance(update, dict) and update.get("price") is not None:
                ts = update.get("timestamp")
                out[str(symbol).upper()] = (float(update["price"]), int(ts) if isinstance(ts, (int, float)) else None)
        return out

    def known_symbols(self) -> set[str]:
        fn = getattr(_prices_api(), "known_symbols", None)
        if fn is not None:
            symbols = {str(s).upper() for s in fn()}
            if symbols:
                return symbols
        return set(alert_settings().fallback_symbols)


class WalletsAppHoldings:
    """The wallets app's `portfolio_holdings(user_id)`."""

    def holdings(self, user_id: int) -> list[dict[str, Any]]:
        fn = getattr(optional_api("wallets.api"), "portfolio_holdings", None)
        return [] if fn is None else list(fn(user_id))
