"""Reads of the prices app: sources to poll, mappings, latest prices, history, overview."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from .conf import PricesSettings, prices_settings
from .models import Candle, LatestPrice, MarketOverview, Source, SourceKind, Symbol, SymbolMapping
from .sources.base import SourceConfig

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


def enabled_sources(conf: PricesSettings | None = None) -> list[Source]:
    """Sources enabled in the admin and allowed by settings (read each tick: no restart)."""
    conf = conf or prices_settings()
    return [row for row in Source.objects.filter(enabled=True) if source_allowed(row.kind, conf)]


def source_by_kind(kind: str, conf: PricesSettings | None = None) -> Source | None:
    for row in enabled_sources(conf):
        if row.kind == kind:
            return row
    return None


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


def latest_prices() -> dict[str, dict[str, Any]]:
    rows = LatestPrice.objects.filter(symbol__active=True).select_related("symbol")
    return {row.symbol.symbol: row.payload for row in rows}


def latest_price(symbol: str) -> dict[str, Any] | None:
    row = LatestPrice.objects.filter(symbol__symbol=symbol.upper(), symbol__active=True).first()
    return row.payload if row is not None else None


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


def readiness(conf: PricesSettings | None = None) -> dict[str, Any]:
    """The `prices` entry of /readyz: per-source health, and whether any source is live."""
    conf = conf or prices_settings()
    now = timezone.now()
    silence = timedelta(seconds=conf.ready_max_silence)
    sources: dict[str, Any] = {}
    live = False
    for row in Source.objects.all():
        allowed = source_allowed(row.kind, conf)
        healthy = bool(row.last_success_at and now - row.last_success_at <= silence)
        if row.enabled and allowed and healthy:
            live = True
        sources[row.slug] = {
            "enabled": row.enabled and allowed,
            "ok": healthy,
            "consecutive_failures": row.consecutive_failures,
            "in_backoff": bool(row.backoff_until and row.backoff_until > now),
            "last_error": row.last_error or None,
        }
    latest = LatestPrice.objects.order_by("-published_at").values_list("published_at", flat=True).first()
    priced = set(LatestPrice.objects.values_list("symbol__symbol", flat=True))
    return {
        "ok": live,
        "sources": sources,
        # Active symbols that never got a price: unknown to every enabled source.
        "unpriced": sorted(known_symbols() - priced),
        "last_published_age": round((now - latest).total_seconds(), 1) if latest else None,
    }
