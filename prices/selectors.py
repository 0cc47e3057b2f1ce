"""Reads of the prices app: sources to poll, mappings, latest prices, history, overview."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from .aggregation import AggregatedPrice
from .choices import SourceKind
from .conf import PricesSettings, prices_settings
from .models import Candle, LatestPrice, MarketOverview, Source, Symbol, SymbolMapping
from .payloads import PriceUpdate
from .sources.base import SourceConfig

#: Kinds with a public market-data WebSocket (prices/streams/).
STREAM_KINDS = frozenset({SourceKind.BINANCE, SourceKind.COINBASE, SourceKind.KRAKEN, SourceKind.OKX})

#: `price_at` answers from a candle at most this much older than the asked time.
PRICE_AT_TOLERANCE = timedelta(minutes=5)


def source_allowed(kind: str, conf: PricesSettings) -> bool:
    """Settings gate the kinds: the simulated market and the live exchanges separately."""
    return conf.simulated if kind == SourceKind.SIMULATED else conf.live_sources


def source_config(row: Source, conf: PricesSettings) -> SourceConfig:
    return SourceConfig(
        slug=row.slug,
        kind=row.kind,
        base_url=row.base_url or conf.base_urls.get(row.kind, ""),
        connect_timeout=conf.connect_timeout,
        read_timeout=conf.read_timeout,
        max_requests=row.max_requests,
        api_key=conf.coingecko_api_key if row.kind == SourceKind.COINGECKO else "",
        pro=conf.coingecko_pro,
        seed=conf.simulated_seed,
        volatility=conf.simulated_volatility,
    )


def stream_url(row: Source, conf: PricesSettings) -> str | None:
    """The WebSocket URL of `row`'s venue, or None when it is not streamed.

    Env PRICES_STREAM_URLS wins (it points every stream elsewhere at once: tests,
    staging, an operator's relay), then the row's own `stream_url`, then
    PRICES['STREAM_URLS'][kind].
    """
    if not row.streaming or row.kind not in STREAM_KINDS:
        return None
    return conf.stream_url_override.get(row.kind) or row.stream_url or conf.stream_urls.get(row.kind) or None


@dataclass(frozen=True)
class SourcePlan:
    slug: str
    kind: str
    config: SourceConfig
    poll_interval: float
    #: {SYMBOL: REST id}
    ids: dict[str, str]
    stream_url: str | None
    #: {stream id: SYMBOL}
    stream_ids: dict[str, str]


@dataclass(frozen=True)
class StreamPlan:
    """What the feed process runs: sources, their ids and URLs (compared to notice admin edits)."""

    symbol_ids: dict[str, int]
    sources: tuple[SourcePlan, ...]


def stream_plan(conf: PricesSettings | None = None) -> StreamPlan:
    conf = conf or prices_settings()
    rows = enabled_sources(conf)
    slugs = [row.slug for row in rows]
    ids = mappings_by_source(slugs)
    stream_ids: dict[str, dict[str, str]] = {slug: {} for slug in slugs}
    mappings = SymbolMapping.objects.filter(active=True, symbol__active=True, source__slug__in=slugs).values_list(
        "source__slug", "symbol__symbol", "external_id", "stream_id"
    )
    for slug, symbol, external, stream_id in mappings:
        stream_ids[slug][stream_id or external] = symbol
    sources = tuple(
        SourcePlan(
            slug=row.slug,
            kind=row.kind,
            config=source_config(row, conf),
            poll_interval=row.poll_interval,
            ids=ids[row.slug],
            stream_url=stream_url(row, conf),
            stream_ids=stream_ids[row.slug],
        )
        for row in rows
    )
    return StreamPlan(symbol_ids=active_symbol_ids(), sources=sources)


def warm_prices(symbol_ids: dict[str, int]) -> list[tuple[AggregatedPrice, float]]:
    """The last published aggregates with their publication times (a cold start resumes from them)."""
    out: list[tuple[AggregatedPrice, float]] = []
    for row in LatestPrice.objects.filter(symbol_id__in=symbol_ids.values()):
        payload = row.payload or {}
        try:
            price = AggregatedPrice(
                symbol=str(payload["symbol"]),
                price=float(payload["price"]),
                timestamp=int(payload["timestamp"]),
                sources=tuple(payload.get("sources") or ()),
                source=str(payload.get("source", "aggregate")),
                change24h=payload.get("change24h"),
                volume24h=payload.get("volume24h"),
                stale=bool(payload.get("stale")),
                degraded=bool(payload.get("degraded")),
                twap=payload.get("twap"),
                quoted_at=payload.get("quoted_at"),
            )
        except (KeyError, TypeError, ValueError):
            continue
        out.append((price, row.published_at.timestamp()))
    return out


def global_figures() -> tuple[dict[str, Any], str | None]:
    """The cached `/global` figures and where they came from (refreshed by the overview task)."""
    row = MarketOverview.objects.filter(key="overview").first()
    cached = (row.global_stats or {}) if row is not None else {}
    return cached.get("figures", {}) or {}, cached.get("source")


def enabled_sources(conf: PricesSettings | None = None) -> list[Source]:
    """Sources enabled in the admin and allowed by settings (read each tick: no restart)."""
    conf = conf or prices_settings()
    return [row for row in Source.objects.filter(enabled=True) if source_allowed(row.kind, conf)]


def active_symbol_ids() -> dict[str, int]:
    return dict(Symbol.objects.filter(active=True).values_list("symbol", "id"))


def mappings_by_source(slugs: list[str]) -> dict[str, dict[str, str]]:
    """{source slug: {SYMBOL: external id}} for active symbols and mappings."""
    out: dict[str, dict[str, str]] = {slug: {} for slug in slugs}
    rows = SymbolMapping.objects.filter(active=True, symbol__active=True, source__slug__in=slugs).values_list(
        "source__slug", "symbol__symbol", "external_id"
    )
    for slug, symbol, external in rows:
        out[slug][symbol] = external
    return out


def known_symbols() -> set[str]:
    return set(Symbol.objects.filter(active=True).values_list("symbol", flat=True))


def latest_prices() -> dict[str, PriceUpdate]:
    """Every active symbol's last published PriceUpdate (stored as published)."""
    rows = LatestPrice.objects.filter(symbol__active=True).select_related("symbol")
    return {row.symbol.symbol: cast(PriceUpdate, row.payload) for row in rows}


def latest_price(symbol: str) -> PriceUpdate | None:
    row = LatestPrice.objects.filter(symbol__symbol=symbol.upper(), symbol__active=True).first()
    return cast(PriceUpdate, row.payload) if row is not None else None


def price_at(symbol: str, when: datetime) -> Decimal | None:
    """The close of the minute candle covering `when` (or the last one before it, ≤ 5 min)."""
    minute = when.replace(second=0, microsecond=0)
    row = (
        Candle.objects.filter(symbol__symbol=symbol.upper(), start__lte=minute, start__gte=minute - PRICE_AT_TOLERANCE)
        .order_by("-start")
        .values_list("close", flat=True)
        .first()
    )
    return row


def price_history(symbol: str, *, start: datetime, end: datetime, limit: int) -> list[dict[str, Any]]:
    """Minute candles of `symbol` in [start, end), oldest first, at most `limit` (the newest)."""
    rows = list(
        Candle.objects.filter(symbol__symbol=symbol, start__gte=start, start__lt=end)
        .order_by("-start")
        .values("start", "open", "high", "low", "close", "volume24h")[:limit]
    )
    rows.reverse()
    return [
        {
            "time": int(row["start"].timestamp() * 1000),
            "open": float(row["open"]),
            "high": float(row["high"]),
            "low": float(row["low"]),
            "close": float(row["close"]),
            "volume24h": row["volume24h"],
        }
        for row in rows
    ]


def symbol_exists(symbol: str) -> bool:
    return Symbol.objects.filter(symbol=symbol, active=True).exists()


def market_overview() -> dict[str, Any] | None:
    row = MarketOverview.objects.filter(key="overview").first()
    return row.payload if row is not None and row.payload else None
