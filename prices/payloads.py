"""The schema of each event the prices app publishes to clients, and the one builder of each.

- `PriceUpdate` on `prices:{SYMBOL}` (one symbol's aggregate),
- `PriceBatch` on `prices` (the updates of one publication),
- `MarketOverview` on `market:overview`.

`client/src/stores/types.ts` mirrors these shapes; docs/prices.md describes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from .aggregation import AggregatedPrice
    from .sources.base import Trade
    from .streams.events import TradeEvent


class PriceUpdate(TypedDict):
    symbol: str
    price: float
    change24h: float | None
    volume24h: float | None
    #: When the aggregate was computed, ms.
    timestamp: int
    #: The sources that made the aggregate (empty when stale).
    sources: list[str]
    source: str
    stale: bool
    degraded: bool
    twap: float | None
    #: The venue time (ms) of the newest quote in the aggregate.
    quoted_at: int | None


class PriceBatch(TypedDict):
    updates: list[PriceUpdate]
    #: Publication time, ms.
    timestamp: int


class Mover(TypedDict):
    symbol: str
    price: float
    change24h: float


class RecentTrade(TypedDict):
    symbol: str
    #: The exchange the trade printed on (a source slug).
    venue: str
    price: float
    qty: float
    #: The taker's side: "buy" or "sell".
    side: str
    #: Venue time, ms.
    time: int


class MarketOverview(TypedDict):
    #: Global figures are None when no source ever gave them (CoinGecko never answered).
    total_market_cap: float | None
    total_volume: float | None
    btc_dominance: float | None
    top_gainers: list[Mover]
    top_losers: list[Mover]
    recent_trades: list[RecentTrade]
    timestamp: int
    #: Where the global figures came from ("coingecko", "simulated"), else "aggregate".
    source: str


def price_update(price: AggregatedPrice) -> PriceUpdate:
    return {
        "symbol": price.symbol,
        "price": price.price,
        "change24h": price.change24h,
        "volume24h": price.volume24h,
        "timestamp": price.timestamp,
        "sources": list(price.sources),
        "source": price.source,
        "stale": price.stale,
        "degraded": price.degraded,
        "twap": price.twap,
        "quoted_at": price.quoted_at,
    }


def price_batch(updates: Iterable[PriceUpdate], timestamp: int) -> PriceBatch:
    return {"updates": list(updates), "timestamp": timestamp}


def recent_trade(venue: str, symbol: str, trade: Trade | TradeEvent) -> RecentTrade:
    return {
        "symbol": symbol,
        "venue": venue,
        "price": trade.price,
        "qty": trade.qty,
        "side": trade.side,
        "time": trade.time,
    }


def market_overview(
    *,
    figures: dict[str, Any],
    source: str | None,
    gainers: list[Mover],
    losers: list[Mover],
    trades: list[RecentTrade],
    timestamp: int,
) -> MarketOverview:
    return {
        "total_market_cap": figures.get("total_market_cap"),
        "total_volume": figures.get("total_volume"),
        "btc_dominance": figures.get("btc_dominance"),
        "top_gainers": gainers,
        "top_losers": losers,
        "recent_trades": trades,
        "timestamp": timestamp,
        "source": source or "aggregate",
    }
