"""Price sources behind one `PriceSource` interface (CoinGecko, Binance, Coinbase, Kraken, simulated)."""

from .base import (
    BadResponse,
    Blocked,
    FetchResult,
    PriceSource,
    RateLimited,
    SourceConfig,
    SourceError,
    SourceUnavailable,
    Trade,
    UnknownSymbol,
)

__all__ = [
    "BadResponse",
    "Blocked",
    "FetchResult",
    "PriceSource",
    "RateLimited",
    "SourceConfig",
    "SourceError",
    "SourceUnavailable",
    "Trade",
    "UnknownSymbol",
]
