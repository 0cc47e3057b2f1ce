"""A simulated market for offline demos: a seeded random walk, every quote labelled simulated."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..quotes import Quote
from .base import FetchResult, PriceSource, Trade

#: Plausible starting points (USD price, circulating supply) so the demo looks real.
START: dict[str, tuple[float, float]] = {
    "BTC": (97_000.0, 19.8e6),
    "ETH": (3_500.0, 120.4e6),
    "SOL": (240.0, 475e6),
    "BNB": (650.0, 144e6),
    "XRP": (1.40, 57e9),
    "ADA": (0.90, 35e9),
    "DOGE": (0.38, 147e9),
    "AVAX": (40.0, 410e6),
    "DOT": (7.5, 1.5e9),
    "LINK": (22.0, 630e6),
    "LTC": (100.0, 75e6),
}
#: Market cap of everything the demo does not track, so BTC dominance looks realistic.
REST_OF_MARKET = 0.55e12
SECONDS_PER_YEAR = 365 * 86_400
#: A gap longer than this (the server was stopped) is not simulated as one huge jump.
MAX_STEP = 60.0


@dataclass(slots=True)
class _Walk:
    rng: random.Random
    price: float
    open24h: float
    volume24h: float
    supply: float
    t: float


class SimulatedSource(PriceSource):
    """Geometric Brownian motion per symbol, seeded by (seed, symbol): reproducible runs."""

    kind = "simulated"
    simulated = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._walks: dict[str, _Walk] = {}
        self._lock = threading.Lock()

    def _walk(self, symbol: str, now: float) -> _Walk:
        walk = self._walks.get(symbol)
        if walk is None:
            rng = random.Random(f"{self.config.seed}:{symbol}")
            price, supply = START.get(symbol, (round(rng.uniform(0.5, 200.0), 4), rng.uniform(1e8, 1e10)))
            change = rng.gauss(0.0, 0.03)
            walk = _Walk(rng, price, price / (1 + change), price * supply * rng.uniform(0.02, 0.08), supply, now)
            self._walks[symbol] = walk
        return walk

    def _step(self, walk: _Walk, now: float) -> None:
        dt = min(max(now - walk.t, 0.0), MAX_STEP)
        walk.t = now
        if dt <= 0:
            return
        sigma = self.config.volatility * math.sqrt(dt / SECONDS_PER_YEAR)
        walk.price *= math.exp(walk.rng.gauss(-0.5 * sigma * sigma, sigma))
        # The 24 h open drifts towards the price so the change stays in a sane band.
        walk.open24h += (walk.price - walk.open24h) * min(1.0, dt / 86_400)
        walk.volume24h *= math.exp(walk.rng.gauss(0.0, 0.02 * math.sqrt(dt)))

    def fetch(self, symbols: Mapping[str, str]) -> FetchResult:
        result = FetchResult()
        now = self.clock.time()
        now_ms = int(now * 1000)
        with self._lock:
            for symbol, external in symbols.items():
                walk = self._walk(external.upper(), now)
                self._step(walk, now)
                change = (walk.price / walk.open24h - 1) * 100
                result.quotes.append(Quote(symbol, self.id, walk.price, now_ms, change, walk.volume24h, simulated=True))
        return result

    def quote(self, symbol: str, external_id: str) -> Quote:
        """One symbol's next step of the walk, now (the simulated stream's tick)."""
        now = self.clock.time()
        with self._lock:
            walk = self._walk(external_id.upper(), now)
            self._step(walk, now)
            change = (walk.price / walk.open24h - 1) * 100
            return Quote(symbol, self.id, walk.price, int(now * 1000), change, walk.volume24h, simulated=True)

    def trade(self, symbol: str, external_id: str) -> Trade:
        """One trade around the current price, now (the simulated stream's trade)."""
        now = self.clock.time()
        with self._lock:
            walk = self._walk(external_id.upper(), now)
            price = walk.price * (1 + walk.rng.gauss(0.0, 0.0002))
            qty = round(walk.rng.lognormvariate(0.0, 1.0) * 1000 / walk.price, 6) or 1e-6
            return Trade(symbol, price, qty, walk.rng.choice(("buy", "sell")), int(now * 1000))

    def trades(self, symbol: str, external_id: str, limit: int) -> list[Trade]:
        now = self.clock.time()
        with self._lock:
            walk = self._walk(external_id.upper(), now)
            out: list[Trade] = []
            t = now
            for _ in range(limit):
                t -= walk.rng.expovariate(2.0)
                price = walk.price * (1 + walk.rng.gauss(0.0, 0.0002))
                qty = round(walk.rng.lognormvariate(0.0, 1.0) * 1000 / walk.price, 6) or 1e-6
                out.append(Trade(symbol, price, qty, walk.rng.choice(("buy", "sell")), int(t * 1000)))
        return out

    def global_stats(self) -> dict[str, Any]:
        now = self.clock.time()
        with self._lock:
            caps = {s: self._walk(s, now).price * self._walk(s, now).supply for s in START}
            volume = sum(self._walk(s, now).volume24h for s in START)
        total = sum(caps.values()) + REST_OF_MARKET
        return {
            "total_market_cap": total,
            "total_volume": volume * 1.6,
            "btc_dominance": caps["BTC"] / total * 100,
        }
