"""Helpers of the stream tests: a sink that records what arrived (the clock: tests.support.clock)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from prices.streams.events import Tick, TradeEvent


class RecordingSink:
    """Records ticks and trades; `reject` decides a tick's fate like the aggregator would."""

    def __init__(self, reject: Callable[[Tick], str | None] = lambda tick: None) -> None:
        self.ticks: list[tuple[str, str, Tick]] = []
        self.trades: list[tuple[str, str, TradeEvent]] = []
        self.reject = reject

    def on_tick(self, source: str, symbol: str, tick: Tick) -> str | None:
        verdict = self.reject(tick)
        if verdict is None:
            self.ticks.append((source, symbol, tick))
        return verdict

    def on_trade(self, source: str, symbol: str, trade: TradeEvent) -> None:
        self.trades.append((source, symbol, trade))

    def prices(self, symbol: str) -> list[float]:
        return [t.price for _, s, t in self.ticks if s == symbol]


async def until(predicate: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """Poll `predicate` on the loop until it is truthy (a bound for a hung test, not a timing claim)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.01)
    raise AssertionError(f"{what} never happened")


class Published:
    """PriceBatches other apps were told about (a bus subscription); reads wait for delivery."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.sub: Any = None

    @classmethod
    @contextlib.contextmanager
    def capture(cls, name: str) -> Iterator[Published]:
        from prices.events import PricesPublished
        from realtime_project.events import bus

        got = cls()
        got.sub = bus.subscribe(PricesPublished, lambda event: got.items.append(event.batch()), name=name)
        try:
            yield got
        finally:
            bus.unsubscribe(got.sub)

    def _sync(self) -> None:
        assert self.sub.drain(10), "events were not delivered"

    def __len__(self) -> int:
        self._sync()
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        self._sync()
        return self.items[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self._sync()
        return iter(list(self.items))
