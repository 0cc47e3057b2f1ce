"""Adapters by kind, reused across ticks while their configuration is unchanged."""

from __future__ import annotations

import threading

from .base import PriceSource, SourceConfig
from .binance import BinanceSource
from .coinbase import CoinbaseSource
from .coingecko import CoinGeckoSource
from .kraken import KrakenSource
from .okx import OKXSource
from .simulated import SimulatedSource

ADAPTERS: dict[str, type[PriceSource]] = {
    "coingecko": CoinGeckoSource,
    "binance": BinanceSource,
    "coinbase": CoinbaseSource,
    "kraken": KrakenSource,
    "okx": OKXSource,
    "simulated": SimulatedSource,
}

_lock = threading.Lock()
# Adapters keep state between polls (the simulated walk, Coinbase's round-robin and
# stats cache, ids found unknown): one instance per configuration, per process.
_instances: dict[str, tuple[SourceConfig, PriceSource]] = {}


def get_adapter(config: SourceConfig) -> PriceSource:
    """The adapter for `config`, rebuilt when the admin changed the source's settings."""
    with _lock:
        cached = _instances.get(config.slug)
        if cached is not None and cached[0] == config:
            return cached[1]
        cls = ADAPTERS.get(config.kind)
        if cls is None:
            raise ValueError(f"unknown source kind {config.kind!r}")
        adapter = cls(config)
        _instances[config.slug] = (config, adapter)
        return adapter


def reset_adapters() -> None:
    """Forget every adapter (tests, and the tick's cold start)."""
    with _lock:
        _instances.clear()
