"""Fixtures of the alerts tests: users, a movable clock, an in-memory price history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from tests.support.clock import FakeClock

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class HistoryPrices:
    """A `PriceReader` over hand-written history (the prices app's history in miniature):
    `price_at` returns the newest recorded price at or before `when`."""

    def __init__(self, symbols: set[str] | None = None) -> None:
        self.points: dict[str, list[tuple[datetime, Decimal]]] = {}
        self.symbols = symbols or {"BTC", "ETH", "SOL"}
        self.latest: dict[str, Decimal] = {}

    def record(self, symbol: str, when: datetime, price: str) -> None:
        self.points.setdefault(symbol, []).append((when, Decimal(price)))
        self.points[symbol].sort()

    def price_at(self, symbol: str, when: datetime) -> Decimal | None:
        best = None
        for at, price in self.points.get(symbol, []):
            if at <= when:
                best = price
        return best

    def latest_prices(self) -> dict[str, Decimal]:
        return dict(self.latest)

    def latest_quotes(self) -> dict[str, tuple[float, int | None]]:
        return {}

    def known_symbols(self) -> set[str]:
        return set(self.symbols)


class Holdings:
    def __init__(self) -> None:
        self.by_user: dict[int, list[dict[str, Any]]] = {}

    def holdings(self, user_id: int) -> list[dict[str, Any]]:
        return list(self.by_user.get(user_id, []))


@pytest.fixture
def clock() -> FakeClock:
    """The engine's clock, moved by the test (no sleeping)."""
    return FakeClock(wall=T0)


@pytest.fixture
def history() -> HistoryPrices:
    return HistoryPrices()


@pytest.fixture
def holdings() -> Holdings:
    return Holdings()


@pytest.fixture
def make_user(db: None) -> Callable[..., Any]:
    counter = iter(range(1, 10_000))

    def make(**extra: Any) -> Any:
        return get_user_model().objects.create_user(username=f"alert-user-{next(counter)}", password=None, **extra)

    return make


@pytest.fixture
def engine(clock: FakeClock, history: HistoryPrices, holdings: Holdings) -> Any:
    from alerts.engine import AlertEngine

    return AlertEngine(prices=history, holdings=holdings, clock=clock)


def batch(clock: FakeClock, **prices: float) -> dict[str, Any]:
    """A PriceBatch of the contract's shape at the clock's time."""
    ts = int(clock.time() * 1000)
    return {
        "updates": [
            {
                "symbol": symbol,
                "price": price,
                "change24h": 0.0,
                "volume24h": 1.0,
                "timestamp": ts,
                "sources": ["binance", "kraken"],
                "source": "aggregate",
                "stale": False,
                "degraded": False,
                "twap": price,
            }
            for symbol, price in prices.items()
        ],
        "timestamp": ts,
    }
