"""The simulated market as a stream: each symbol ticks at its own, realistic cadence."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from typing import Any

from realtime_project.clock import SYSTEM_CLOCK, Clock

from ..quotes import Quote
from ..sources.base import Trade
from ..sources.simulated import SimulatedSource

#: Mean seconds between two ticks of a symbol (majors tick about once a second).
MEAN_INTERVAL = 1.0
#: Bounds of one interval: never a burst storm, never a silent symbol.
MIN_INTERVAL, MAX_INTERVAL = 0.2, 3.0
#: Chance that a tick of a trade symbol also prints a trade.
TRADE_CHANCE = 0.6


class SimulatedStream:
    """Feeds `on_quote` (every quote labelled simulated) and `on_trade` until cancelled."""

    def __init__(
        self,
        *,
        source: SimulatedSource,
        symbols: dict[str, str],
        on_quote: Callable[[Quote], None],
        on_trade: Callable[[str, str, Trade], None],
        trade_symbols: frozenset[str] = frozenset(),
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        self.source = source
        self.symbols = dict(symbols)
        self.on_quote = on_quote
        self.on_trade = on_trade
        self.trade_symbols = trade_symbols
        self.clock = clock
        self.rng = rng or random.Random(source.config.seed)
        self.ticks = 0
        self.trades = 0

    def _interval(self) -> float:
        return min(MAX_INTERVAL, max(MIN_INTERVAL, self.rng.expovariate(1 / MEAN_INTERVAL)))

    async def run(self) -> None:
        clock = self.clock
        now = clock.monotonic()
        due = [(now + self.rng.uniform(0, MEAN_INTERVAL), symbol) for symbol in sorted(self.symbols)]
        heapq.heapify(due)
        while due:
            at, symbol = due[0]
            wait = at - clock.monotonic()
            if wait > 0:
                await clock.sleep(wait)
                continue
            heapq.heapreplace(due, (max(at, clock.monotonic()) + self._interval(), symbol))
            external = self.symbols[symbol]
            self.on_quote(self.source.quote(symbol, external))
            self.ticks += 1
            if symbol in self.trade_symbols and self.rng.random() < TRADE_CHANCE:
                self.on_trade(self.source.id, symbol, self.source.trade(symbol, external))
                self.trades += 1

    def health(self) -> dict[str, Any]:
        return {
            "ok": True,
            "state": "simulating",
            "connected": True,
            "ticks": self.ticks,
            "trades": self.trades,
            "symbols": len(self.symbols),
        }
