"""The `PriceSource` interface, its result types and the errors a poll can end with."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from realtime_project.clock import SYSTEM_CLOCK, Clock

from ..quotes import Quote


class SourceError(Exception):
    """A poll failed as a whole. `code` is stored in source health (never shown to clients)."""

    code = "source_error"
    #: Seconds the source asked us to wait (HTTP Retry-After), if it said so.
    retry_after: float | None = None
    #: Not worth retrying soon (HTTP 451: this host refuses us for good).
    permanent = False

    def __init__(self, detail: str = "", *, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(detail or code or self.code)
        if code is not None:
            self.code = code
        if retry_after is not None:
            self.retry_after = retry_after


class SourceUnavailable(SourceError):
    """Timeouts, refused connections, 5xx, `EService:Unavailable`: try again after backoff."""

    code = "unavailable"


class RateLimited(SourceError):
    """HTTP 429 (or 418: IP banned), CoinGecko's error object, Kraken's `EGeneral:Too many requests`."""

    code = "rate_limited"


class Blocked(SourceError):
    """HTTP 451 restricted location: a permanent outage for this host, not a retry."""

    code = "blocked"
    permanent = True


class BadResponse(SourceError):
    """Not JSON, truncated JSON, an HTML error page, or not the documented shape."""

    code = "bad_response"


class UnknownSymbol(SourceError):
    """The source refused the request because of an id it does not know.

    Binance (-1121) and Kraken (`EQuery:Unknown asset pair`) fail a whole multi-symbol
    request for one unknown id; adapters bisect to find it (see `batching`).
    """

    code = "unknown_symbol"


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """What an adapter needs from its Source row (plain data: threads never touch the ORM)."""

    slug: str
    kind: str
    base_url: str
    connect_timeout: float = 3.05
    read_timeout: float = 5.0
    max_requests: int = 0
    api_key: str = ""
    pro: bool = False
    seed: int = 42
    volatility: float = 0.6


@dataclass(slots=True)
class FetchResult:
    quotes: list[Quote] = field(default_factory=list)
    #: Bad input seen while parsing (counted per kind into source health).
    problems: Counter[str] = field(default_factory=Counter)
    requests: int = 0


@dataclass(frozen=True, slots=True)
class Trade:
    symbol: str
    price: float
    qty: float
    side: str  # "buy" | "sell" (the taker's side)
    time: int  # ms


class PriceSource:
    """A source of quotes. Subclasses implement `fetch`; `trades`/`global_stats` are optional.

    `fetch(symbols)` takes {SYMBOL: the source's id for it} (the admin-editable mapping)
    and returns the quotes it could parse plus counted problems; a failure of the
    whole poll raises a `SourceError`. Adapters do I/O only: validation of values and
    health bookkeeping happen in the aggregator and the services.
    """

    kind = ""
    simulated = False

    def __init__(self, config: SourceConfig, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self.id = config.slug
        self.clock = clock

    def now_ms(self) -> int:
        return int(self.clock.time() * 1000)

    def fetch(self, symbols: Mapping[str, str]) -> FetchResult:
        raise NotImplementedError("PriceSource subclasses must implement fetch(symbols)")

    def trades(self, symbol: str, external_id: str, limit: int) -> list[Trade]:
        raise NotImplementedError(f"{self.kind} does not provide trades")

    def global_stats(self) -> dict[str, Any]:
        raise NotImplementedError(f"{self.kind} does not provide global market figures")
