"""Coinbase Exchange: `/products/{id}/ticker` and `/products/{id}/stats`, one product per request."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import wait
from typing import Any

from ..quotes import Quote
from ..threads import thread_pool
from .base import BadResponse, FetchResult, PriceSource, Trade
from .batching import UnknownIds
from .http import get_json
from .parsing import Malformed, iso_ms, number

#: Coinbase allows 10 public requests/s per IP (bursts 15) and has no batch ticker, so
#: a poll sends at most this many requests and walks the products round-robin.
DEFAULT_REQUESTS_PER_POLL = 10
#: 24 h open and volume move slowly: /stats is refreshed this rarely per product.
STATS_TTL = 300.0
#: Concurrent requests within one poll.
PARALLEL = 4


class _NotFound(Exception):
    pass


class CoinbaseSource(PriceSource):
    kind = "coinbase"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unknown = UnknownIds(self.clock)
        self._cursor = 0
        self._stats: dict[str, tuple[float, float, float]] = {}  # product -> (fetched_at, open, volume)

    def _get(self, path: str) -> Any:
        reply = get_json(
            self.config.base_url.rstrip("/") + path, timeout=(self.config.connect_timeout, self.config.read_timeout)
        )
        if reply.status == 404:
            raise _NotFound(path)
        if reply.status != 200:
            raise BadResponse(f"HTTP {reply.status}", code=f"http_{reply.status}")
        if not isinstance(reply.body, dict) and not isinstance(reply.body, list):
            raise BadResponse("not JSON object", code="bad_shape")
        return reply.body

    def _plan(self, products: list[str]) -> list[tuple[str, bool]]:
        """(product, needs stats) for this poll, within the request budget, round-robin."""
        budget = self.config.max_requests or DEFAULT_REQUESTS_PER_POLL
        now = self.clock.monotonic()
        plan: list[tuple[str, bool]] = []
        n = len(products)
        visited = 0
        while budget > 0 and visited < n:
            product = products[(self._cursor + visited) % n]
            cached = self._stats.get(product)
            needs_stats = cached is None or now - cached[0] > STATS_TTL
            cost = 2 if needs_stats else 1
            if cost > budget and plan:
                break
            plan.append((product, needs_stats and cost <= budget))
            budget -= cost
            visited += 1
        self._cursor = (self._cursor + visited) % n if n else 0
        return plan

    def fetch(self, symbols: Mapping[str, str]) -> FetchResult:
        result = FetchResult()
        by_product = {external.upper(): symbol for symbol, external in symbols.items()}
        products, skipped = self.unknown.filter(sorted(by_product))
        result.problems["skipped_unknown"] += skipped
        plan = self._plan(products)
        if not plan:
            return result
        pool = thread_pool("prices-coinbase", PARALLEL)
        futures = [pool.submit(self._one, product, with_stats) for product, with_stats in plan]
        wait(futures)  # every request ends before a failure is raised: none outlives the poll
        outcomes = [future.result() for future in futures]
        result.requests += sum(2 if with_stats else 1 for _, with_stats in plan)
        unknown: set[str] = set()
        for product, outcome in zip((p for p, _ in plan), outcomes, strict=True):
            if outcome == "not_found":
                unknown.add(product)
                result.problems["unknown_symbol"] += 1
            elif outcome == "malformed":
                result.problems["malformed"] += 1
            elif isinstance(outcome, tuple):
                price, ts, change, volume = outcome
                result.quotes.append(Quote(by_product[product], self.id, price, ts, change, volume))
        self.unknown.add(unknown)
        return result

    def _one(self, product: str, with_stats: bool) -> Any:
        """Fetch one product; SourceErrors (429, 5xx, timeouts) fail the whole poll."""
        try:
            ticker = self._get(f"/products/{product}/ticker")
            if with_stats:
                stats = self._get(f"/products/{product}/stats")
                try:
                    self._stats[product] = (self.clock.monotonic(), number(stats["open"]), number(stats["volume"]))
                except (KeyError, TypeError, Malformed):
                    self._stats.pop(product, None)
        except _NotFound:
            return "not_found"
        try:
            price = number(ticker["price"])
            ts = iso_ms(ticker["time"])
        except (KeyError, TypeError, Malformed):
            return "malformed"
        change = volume = None
        cached = self._stats.get(product)
        if cached is not None:
            _, open_24h, base_volume = cached
            # stats `open` is the price 24 h ago; `volume` is in base units.
            change = (price - open_24h) / open_24h * 100 if open_24h > 0 else None
            volume = base_volume * price
        return (price, ts, change, volume)

    def trades(self, symbol: str, external_id: str, limit: int) -> list[Trade]:
        """Recent trades; Coinbase's `side` is the maker's, so the taker did the opposite."""
        try:
            body = self._get(f"/products/{external_id.upper()}/trades?limit={int(limit)}")
        except _NotFound:
            return []
        out: list[Trade] = []
        for row in body if isinstance(body, list) else []:
            try:
                side = {"buy": "sell", "sell": "buy"}[row["side"]]
                out.append(Trade(symbol, number(row["price"]), number(row["size"]), side, iso_ms(row["time"])))
            except (KeyError, TypeError, Malformed):
                continue
        return out
