"""Adapters by kind, reused across ticks while their configuration is unchanged."""

from __future__ import annotations

import threading

from realtime_project.runtime import Slot

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
#: Adapters keep state between polls (the simulated walk, Coinbase's round-robin and
#: stats cache, ids found unknown): one instance per configuration, per process.
_INSTANCES: Slot[dict[str, tuple[SourceConfig, PriceSource]]] = Slot("prices.adapters", dict)


def get_adapter(config: SourceConfig) -> PriceSource:
    """The adapter for `config`, rebuilt when the admin changed the source's settings."""
    instances = _INSTANCES.get()
    with _lock:
        cached = instances.get(config.slug)
        if cached is not None and cached[0] == config:
            return cached[1]
        cls = ADAPTERS.get(config.kind)
        if cls is None:
            raise ValueError(f"unknown source kind {config.kind!r}")
        adapter = cls(config)
        instances[config.slug] = (config, adapter)
        return adapter
