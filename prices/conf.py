"""The `PRICES` setting: documented defaults, overridable in settings and by env vars."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from django.conf import settings

#: Upstream hosts (reference/README.md). Per-source rows may override them in the admin.
DEFAULT_BASE_URLS: dict[str, str] = {
    "coingecko": "https://api.coingecko.com/api/v3",
    "binance": "https://api.binance.com",
    "coinbase": "https://api.exchange.coinbase.com",
    "kraken": "https://api.kraken.com",
    "simulated": "",
}


def _defaults() -> dict[str, Any]:
    embedded = bool(getattr(settings, "EMBEDDED", False))
    return {
        # Base URLs per source kind; a Source row's own base_url wins when set.
        "BASE_URLS": dict(DEFAULT_BASE_URLS),
        # CoinGecko demo/pro key (header x-cg-demo-api-key / x-cg-pro-api-key). Keys come
        # from the environment only, never from the database or the admin.
        "COINGECKO_API_KEY": os.environ.get("PRICES_COINGECKO_API_KEY", ""),
        "COINGECKO_PRO": os.environ.get("PRICES_COINGECKO_PRO", "") in {"1", "true", "yes"},
        # HTTP timeouts (connect, read) in seconds: a slow source must not hold the tick.
        "CONNECT_TIMEOUT": 3.05,
        "READ_TIMEOUT": 5.0,
        # The simulated market: on by default only in embedded mode, so `make run` shows
        # moving prices offline; production must opt in explicitly (and its quotes are
        # always labelled `source: "simulated"`).
        "SIMULATED": _env_bool("PRICES_SIMULATED", embedded),
        # Poll the real exchanges (rows of kind coingecko/binance/coinbase/kraken). Off by
        # default in embedded mode: the offline demo must not hammer unreachable hosts.
        "LIVE_SOURCES": _env_bool("PRICES_LIVE_SOURCES", not embedded),
        "SIMULATED_SEED": int(os.environ.get("PRICES_SIMULATED_SEED", "42")),
        # Annualised volatility of the random walk (crypto majors trade around 50-80 %).
        "SIMULATED_VOLATILITY": 0.6,
        # A quote older than this is not fresh and does not count (Chainlink: reject
        # answers older than the heartbeat). CoinGecko's upstream cache is 60 s.
        "STALE_AFTER": 120.0,
        # Quotes stamped further in the future than this are rejected as bad input.
        "FUTURE_TOLERANCE": 5.0,
        # A quote deviating more than this fraction from the median of the other
        # sources is an outlier: dropped and counted against its source.
        "OUTLIER_BOUND": 0.02,
        # Fewer accepted sources than this: published with `degraded: true`. Embedded
        # mode runs one simulated source, so one is enough there.
        "MIN_SOURCES": 1 if embedded else 2,
        # TWAP window in seconds.
        "TWAP_WINDOW": 300.0,
        # Change-driven publishing (as price oracles do): publish a symbol when it moved by
        # at least DEVIATION_BPS basis points since its last publication, or HEARTBEAT
        # seconds elapsed, or its stale/degraded flags changed.
        "DEVIATION_BPS": 1.0,
        "HEARTBEAT": 60.0,
        # Beat intervals (seconds) installed by `manage.py setup_schedule`.
        "TICK_INTERVAL": 2.0,
        "OVERVIEW_INTERVAL": 30.0,
        "PRUNE_INTERVAL": 3600.0,
        # 1-minute candles are kept this many days, then pruned.
        "HISTORY_RETENTION_DAYS": 7,
        # CoinGecko /global is cached 10 min upstream: fetching it more often is waste.
        "GLOBAL_REFRESH": 300.0,
        # Market overview: movers listed per side and Binance pairs sampled for trades.
        "OVERVIEW_MOVERS": 5,
        "OVERVIEW_TRADE_SYMBOLS": ["BTC", "ETH", "SOL"],
        "OVERVIEW_TRADES": 20,
        # Exponential backoff of a failing source: base * 2**(failures-1), capped; a
        # Retry-After from the source wins when longer. HTTP 451 blocks for a day.
        "BACKOFF_BASE": 2.0,
        "BACKOFF_MAX": 600.0,
        "PERMANENT_BACKOFF": 86_400.0,
        # Readiness: the check fails when no enabled source succeeded for this long.
        "READY_MAX_SILENCE": 300.0,
    }


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class PricesSettings:
    base_urls: dict[str, str]
    coingecko_api_key: str
    coingecko_pro: bool
    connect_timeout: float
    read_timeout: float
    simulated: bool
    live_sources: bool
    simulated_seed: int
    simulated_volatility: float
    stale_after: float
    future_tolerance: float
    outlier_bound: float
    min_sources: int
    twap_window: float
    deviation_bps: float
    heartbeat: float
    tick_interval: float
    overview_interval: float
    prune_interval: float
    history_retention_days: int
    global_refresh: float
    overview_movers: int
    overview_trade_symbols: tuple[str, ...]
    overview_trades: int
    backoff_base: float
    backoff_max: float
    permanent_backoff: float
    ready_max_silence: float


def prices_settings() -> PricesSettings:
    """The merged settings (read each time: cheap, and `override_settings` just works)."""
    merged = _defaults()
    user: dict[str, Any] = dict(getattr(settings, "PRICES", {}) or {})
    unknown = set(user) - set(merged)
    if unknown:
        raise ValueError(f"unknown PRICES settings: {sorted(unknown)}")
    base_urls = {**merged["BASE_URLS"], **user.pop("BASE_URLS", {})}
    merged.update(user)
    return PricesSettings(
        base_urls=base_urls,
        coingecko_api_key=str(merged["COINGECKO_API_KEY"]),
        coingecko_pro=bool(merged["COINGECKO_PRO"]),
        connect_timeout=float(merged["CONNECT_TIMEOUT"]),
        read_timeout=float(merged["READ_TIMEOUT"]),
        simulated=bool(merged["SIMULATED"]),
        live_sources=bool(merged["LIVE_SOURCES"]),
        simulated_seed=int(merged["SIMULATED_SEED"]),
        simulated_volatility=float(merged["SIMULATED_VOLATILITY"]),
        stale_after=float(merged["STALE_AFTER"]),
        future_tolerance=float(merged["FUTURE_TOLERANCE"]),
        outlier_bound=float(merged["OUTLIER_BOUND"]),
        min_sources=int(merged["MIN_SOURCES"]),
        twap_window=float(merged["TWAP_WINDOW"]),
        deviation_bps=float(merged["DEVIATION_BPS"]),
        heartbeat=float(merged["HEARTBEAT"]),
        tick_interval=float(merged["TICK_INTERVAL"]),
        overview_interval=float(merged["OVERVIEW_INTERVAL"]),
        prune_interval=float(merged["PRUNE_INTERVAL"]),
        history_retention_days=int(merged["HISTORY_RETENTION_DAYS"]),
        global_refresh=float(merged["GLOBAL_REFRESH"]),
        overview_movers=int(merged["OVERVIEW_MOVERS"]),
        overview_trade_symbols=tuple(str(s).upper() for s in merged["OVERVIEW_TRADE_SYMBOLS"]),
        overview_trades=int(merged["OVERVIEW_TRADES"]),
        backoff_base=float(merged["BACKOFF_BASE"]),
        backoff_max=float(merged["BACKOFF_MAX"]),
        permanent_backoff=float(merged["PERMANENT_BACKOFF"]),
        ready_max_silence=float(merged["READY_MAX_SILENCE"]),
    )
