"""The market overview: global figures, top movers, recent trades; published on change.

Two publishers, never at once: while a feed process streams (`prices.feeds`), it
builds the overview from the streams every `OVERVIEW_STREAM_INTERVAL` (movers from
every streamed symbol, trades from the venues' trade streams) and the beat task only
refreshes the global figures (CoinGecko has no stream); without a feed process the
beat task builds and publishes it from REST, as the fallback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from realtime_project.gateway.api import publish

from .. import payloads
from ..aggregation import AggregatedPrice
from ..choices import SourceKind
from ..conf import PricesSettings, prices_settings
from ..models import MarketOverview, Source, SymbolMapping
from ..payloads import Mover, RecentTrade, market_overview, recent_trade
from ..publishing import OVERVIEW_CHANNEL
from ..selectors import enabled_sources, latest_prices, source_config
from ..sources.base import SourceError, Trade
from ..sources.registry import get_adapter
from .sources import source_record_poll

logger = logging.getLogger("prices.overview")


def _usable(row: Source | None, now: datetime) -> bool:
    return row is not None and not (row.backoff_until is not None and row.backoff_until > now)


def _pick(rows: list[Source], kind: str) -> Source | None:
    return next((row for row in rows if row.kind == kind), None)


def _global_stats(
    row: MarketOverview, rows: list[Source], now: datetime, conf: PricesSettings
) -> tuple[dict[str, Any], str | None]:
    """Fresh or cached `/global` figures and their source (CoinGecko, else simulated)."""
    cached = row.global_stats or {}
    if row.global_fetched_at and now - row.global_fetched_at < timedelta(seconds=conf.global_refresh) and cached:
        return cached.get("figures", {}), cached.get("source")
    for kind in (SourceKind.COINGECKO, SourceKind.SIMULATED):
        source = _pick(rows, kind)
        if not _usable(source, now):
            continue
        assert source is not None
        try:
            figures = get_adapter(source_config(source, conf)).global_stats()
        except SourceError as exc:
            source_record_poll(slug=source.slug, now=now, error=exc, polled=False, conf=conf)
            continue
        if kind != SourceKind.SIMULATED:
            source_record_poll(slug=source.slug, now=now, polled=False, conf=conf)
        row.global_stats = {"figures": figures, "source": str(kind)}
        row.global_fetched_at = now
        return figures, str(kind)
    return cached.get("figures", {}), cached.get("source")


def _trades(rows: list[Source], now: datetime, conf: PricesSettings) -> list[tuple[str, Trade]]:
    """Recent trades of the tracked pairs: Binance, or the simulated market offline."""
    for kind in (SourceKind.BINANCE, SourceKind.SIMULATED):
        source = _pick(rows, kind)
        if not _usable(source, now):
            continue
        assert source is not None
        adapter = get_adapter(source_config(source, conf))
        mapping = dict(
            SymbolMapping.objects.filter(
                source=source, active=True, symbol__active=True, symbol__symbol__in=conf.overview_trade_symbols
            ).values_list("symbol__symbol", "external_id")
        )
        trades: list[Trade] = []
        try:
            for symbol in conf.overview_trade_symbols:
                if symbol in mapping:
                    trades += adapter.trades(symbol, mapping[symbol], conf.overview_trades)
        except SourceError as exc:
            source_record_poll(slug=source.slug, now=now, error=exc, polled=False, conf=conf)
            continue
        trades.sort(key=lambda t: t.time, reverse=True)
        return [(source.slug, t) for t in trades[: conf.overview_trades]]
    return []


def _movers(conf: PricesSettings) -> tuple[list[Mover], list[Mover]]:
    rows: list[Mover] = [
        {"symbol": u["symbol"], "price": u["price"], "change24h": change}
        for u in latest_prices().values()
        if isinstance(change := u.get("change24h"), int | float) and not u.get("stale")
    ]
    return _rank(rows, conf.overview_movers)


def _rank(rows: list[Mover], n: int) -> tuple[list[Mover], list[Mover]]:
    rows.sort(key=lambda r: (r["change24h"], r["symbol"]), reverse=True)
    gainers = [r for r in rows if r["change24h"] > 0][:n]
    losers = [r for r in reversed(rows) if r["change24h"] < 0][:n]
    return gainers, losers


def overview_payload(
    *,
    figures: dict[str, Any],
    source: str | None,
    prices: Iterable[AggregatedPrice],
    trades: list[RecentTrade],
    conf: PricesSettings,
    now: float,
) -> payloads.MarketOverview:
    """The overview from the streams: movers among every fresh aggregate, the newest trades.

    Global figures CoinGecko never gave are `null` (the dashboard shows "—").
    """
    rows: list[Mover] = [
        {"symbol": p.symbol, "price": p.price, "change24h": p.change24h}
        for p in prices
        if p.change24h is not None and not p.stale
    ]
    gainers, losers = _rank(rows, conf.overview_movers)
    return market_overview(
        figures=figures,
        source=source,
        gainers=gainers,
        losers=losers,
        trades=trades[: conf.overview_trades],
        timestamp=int(now * 1000),
    )


def market_overview_save(*, payload: payloads.MarketOverview, now: float) -> None:
    """Store the overview the feed process published (snapshots and REST read it)."""
    MarketOverview.objects.update_or_create(
        key="overview", defaults={"payload": payload, "published_at": datetime.fromtimestamp(now, UTC)}
    )


def market_overview_refresh(*, now: float | None = None, streams: bool = False) -> payloads.MarketOverview | None:
    """Build the overview; persist and publish it when it changed. Returns it if published.

    With `streams` (a feed process publishes the overview) only the global figures
    are refreshed and stored for it. Network requests happen before the single write:
    nothing is locked while a source is slow.
    """
    conf = prices_settings()
    now = time.time() if now is None else now
    now_dt = datetime.fromtimestamp(now, UTC)
    rows = enabled_sources(conf)
    current, _ = MarketOverview.objects.get_or_create(key="overview")
    figures, source = _global_stats(current, rows, now_dt, conf)
    if streams:
        MarketOverview.objects.filter(pk=current.pk).update(
            global_stats=current.global_stats, global_fetched_at=current.global_fetched_at
        )
        return None
    gainers, losers = _movers(conf)
    trades = _trades(rows, now_dt, conf)
    payload = market_overview(
        figures=figures,
        source=source,
        gainers=gainers,
        losers=losers,
        trades=[recent_trade(venue, t.symbol, t) for venue, t in trades],
        timestamp=int(now * 1000),
    )
    previous = {k: v for k, v in (current.payload or {}).items() if k != "timestamp"}
    changed = previous != {k: v for k, v in payload.items() if k != "timestamp"}
    fields: dict[str, Any] = {"global_stats": current.global_stats, "global_fetched_at": current.global_fetched_at}
    if changed:
        fields.update(payload=payload, published_at=now_dt)
    # A single UPDATE, no read-then-write transaction (one overview task runs at a time).
    MarketOverview.objects.filter(pk=current.pk).update(**fields)
    if not changed:
        return None
    publish(OVERVIEW_CHANNEL, payload)
    return payload
