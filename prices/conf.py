"""The `PRICES` setting: documented defaults, overridable by `PRICES_<KEY>` env vars and
`settings.PRICES` (in that order: `realtime_project.appsettings`)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from realtime_project.appsettings import AppSettings

#: Upstream hosts (reference/README.md). Per-source rows may override them in the admin.
DEFAULT_BASE_URLS: dict[str, str] = {
    "coingecko": "https://api.coingecko.com/api/v3",
    "binance": "https://api.binance.com",
    "coinbase": "https://api.exchange.coinbase.com",
    "kraken": "https://api.kraken.com",
    "okx": "https://www.okx.com",
    "simulated": "",
}

#: Public market-data WebSockets (reference/streams.md). A Source row's `stream_url` wins,
#: and env PRICES_STREAM_URLS (a JSON object kind -> URL) overrides everything at once.
DEFAULT_STREAM_URLS: dict[str, str] = {
    "binance": "wss://stream.binance.com:9443/stream",
    "coinbase": "wss://ws-feed.exchange.coinbase.com",
    "kraken": "wss://ws.kraken.com/v2",
    "okx": "wss://ws.okx.com:8443/ws/v5/public",
}
#: The coalescing window may not exceed this (issue #11: updates wait at most 50 ms).
MAX_COALESCE_WINDOW = 0.05


def _defaults() -> dict[str, Any]:
    embedded = bool(getattr(settings, "EMBEDDED", False))
    return {
        # Base URLs per source kind; a Source row's own base_url wins when set.
        "BASE_URLS": dict(DEFAULT_BASE_URLS),
        # CoinGecko demo/pro key (header x-cg-demo-api-key / x-cg-pro-api-key). Keys come
        # from the environment only, never from the database or the admin.
        "COINGECKO_API_KEY": "",
        "COINGECKO_PRO": False,
        # HTTP timeouts (connect, read) in seconds: a slow source must not hold the tick.
        "CONNECT_TIMEOUT": 3.05,
        "READ_TIMEOUT": 5.0,
        # The simulated market: on by default only in embedded mode, so `make run` shows
        # moving prices offline; production must opt in explicitly (and its quotes are
        # always labelled `source: "simulated"`).
        "SIMULATED": embedded,
        # Poll the real exchanges (rows of kind coingecko/binance/coinbase/kraken). Off by
        # default in embedded mode: the offline demo must not hammer unreachable hosts.
        "LIVE_SOURCES": not embedded,
        "SIMULATED_SEED": 42,
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
        # --- streams (the feed process, docs/prices.md "Streams") ---
        # WebSocket URLs per kind; env PRICES_STREAM_URLS overrides them all at once.
        "STREAM_URLS": dict(DEFAULT_STREAM_URLS),
        # Changed symbols are published together at most this often (leading edge: a lone
        # update goes out at once). At most MAX_COALESCE_WINDOW.
        "COALESCE_WINDOW": 0.01,
        # Published prices and candles are written to the database at most this often.
        "PERSIST_INTERVAL": 1.0,
        # A stream quote whose venue time is older than this on arrival is rejected.
        "STREAM_MAX_QUOTE_AGE": 3600.0,
        # While a venue streams, its REST API is still polled this often to compare.
        "RECONCILE_INTERVAL": 300.0,
        # The market overview (movers, trades) is rebuilt from the streams this often.
        "OVERVIEW_STREAM_INTERVAL": 1.0,
        "STREAM_CONNECT_TIMEOUT": 10.0,
        "STREAM_ACK_TIMEOUT": 10.0,
        # Reconnects: full jitter over [0, min(cap, base * 2**n)].
        "STREAM_BACKOFF_BASE": 0.5,
        "STREAM_BACKOFF_CAP": 30.0,
        # After a venue's rate-limit disconnect, at least this long (and half the pace).
        "STREAM_RATE_LIMIT_WAIT": 10.0,
        # Connections are replaced this long before a venue's lifetime limit (Binance 24 h).
        "STREAM_ROTATE_MARGIN": 600.0,
        # A venue's quotes stop counting after 2 of its cadences of silence plus this
        # (issue #11: the aggregate goes stale within 2 cadences of all venues going quiet).
        "STREAM_LIVE_GRACE": 0.0,
    }


PRICES = AppSettings(
    "PRICES",
    _defaults,
    env_prefix="PRICES_",
    # URL maps: rows of the admin and the validated PRICES_STREAM_URLS override them.
    env_names={"BASE_URLS": None, "STREAM_URLS": None},
)


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
    stream_urls: dict[str, str]
    stream_url_override: dict[str, str]
    coalesce_window: float
    persist_interval: float
    stream_max_quote_age: float
    reconcile_interval: float
    overview_stream_interval: float
    stream_connect_timeout: float
    stream_ack_timeout: float
    stream_backoff_base: float
    stream_backoff_cap: float
    stream_rate_limit_wait: float
    stream_rotate_margin: float
    stream_live_grace: float


def prices_settings() -> PricesSettings:
    """The typed settings (built once per reload: `override_settings` takes effect)."""
    return PRICES.build(_prices_settings)


def _prices_settings(merged: Mapping[str, Any]) -> PricesSettings:
    coalesce = float(merged["COALESCE_WINDOW"])
    if not 0 < coalesce <= MAX_COALESCE_WINDOW:
        raise ValueError(f"PRICES['COALESCE_WINDOW'] must be in (0, {MAX_COALESCE_WINDOW}] seconds, not {coalesce}")
    return PricesSettings(
        base_urls=dict(merged["BASE_URLS"]),
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
        stream_urls=dict(merged["STREAM_URLS"]),
        stream_url_override=stream_urls_from_env(),
        coalesce_window=coalesce,
        persist_interval=float(merged["PERSIST_INTERVAL"]),
        stream_max_quote_age=float(merged["STREAM_MAX_QUOTE_AGE"]),
        reconcile_interval=float(merged["RECONCILE_INTERVAL"]),
        overview_stream_interval=float(merged["OVERVIEW_STREAM_INTERVAL"]),
        stream_connect_timeout=float(merged["STREAM_CONNECT_TIMEOUT"]),
        stream_ack_timeout=float(merged["STREAM_ACK_TIMEOUT"]),
        stream_backoff_base=float(merged["STREAM_BACKOFF_BASE"]),
        stream_backoff_cap=float(merged["STREAM_BACKOFF_CAP"]),
        stream_rate_limit_wait=float(merged["STREAM_RATE_LIMIT_WAIT"]),
        stream_rotate_margin=float(merged["STREAM_ROTATE_MARGIN"]),
        stream_live_grace=float(merged["STREAM_LIVE_GRACE"]),
    )


def stream_urls_from_env(value: str | None = None) -> dict[str, str]:
    """Env PRICES_STREAM_URLS: a JSON object {kind: ws(s) URL}; raises ValueError when wrong.

    A typo here must stop the process with a clear message, not stream from the
    vendors' hosts while the operator believes otherwise.
    """
    raw = os.environ.get("PRICES_STREAM_URLS", "") if value is None else value
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"PRICES_STREAM_URLS is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise ValueError('PRICES_STREAM_URLS must be a JSON object: {"binance": "ws://…", …}')
    unknown = set(parsed) - set(DEFAULT_STREAM_URLS)
    if unknown:
        raise ValueError(
            f"PRICES_STREAM_URLS: no stream for {sorted(unknown)} (streams: {sorted(DEFAULT_STREAM_URLS)})"
        )
    for kind, url in parsed.items():
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
            raise ValueError(f"PRICES_STREAM_URLS[{kind!r}] must be a ws:// or wss:// URL, not {url!r}")
    return dict(parsed)
