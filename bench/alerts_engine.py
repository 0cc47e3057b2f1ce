"""Alert engine benchmark: 1,000,000 active rules over 500 symbols, batches of 500 updates.

Measures the engine's evaluation stage (`AlertEngine.match`: housekeeping, the sorted-
threshold index, percent windows), excluding the database claim and notification
delivery, and compares it in the same run with the naive scan (every rule checked
against the batch). Reports memory per rule (index arrays, and process RSS growth).

    .venv/bin/python -m bench.alerts_engine [--rules 1000000] [--symbols 500] [--batches 50]

Goal (issue #6): <= 50 ms per 500-update batch. Percent rules read their reference
price from an in-memory `PriceSource` here (production reads the prices app's history,
once per symbol and window per batch, not per rule).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")

import django

django.setup()

from alerts.engine import AlertEngine  # noqa: E402
from alerts.index import Key  # noqa: E402
from tests.support.clock import FakeClock  # noqa: E402

WINDOWS = (3600, 86400)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class ReferencePrices:
    """`PriceSource` over a dict: the price `window` seconds ago is a fixed reference."""

    def __init__(self, reference: dict[tuple[str, int], float]) -> None:
        self.reference = reference
        self.t0 = datetime(2026, 1, 1, tzinfo=UTC)
        self.now = self.t0

    def price_at(self, symbol: str, when: datetime) -> Decimal | None:
        window = round((self.now - when).total_seconds())
        value = self.reference.get((symbol, window))
        return None if value is None else Decimal(value)

    def latest_prices(self) -> dict[str, Decimal]:
        return {}

    def known_symbols(self) -> set[str]:
        return set()


def make_rules(n: int, symbols: list[str], base: dict[str, float], rng: random.Random) -> list[tuple[Key, float, int]]:
    """A realistic mix: thresholds near the current price, on the side that has not fired."""
    rules: list[tuple[Key, float, int]] = []
    for rule_id in range(1, n + 1):
        symbol = symbols[rule_id % len(symbols)]
        p = base[symbol]
        r = rng.random()
        distance = rng.uniform(0.005, 0.30)
        if r < 0.35:
            rules.append((("above", symbol), p * (1 + distance), rule_id))
        elif r < 0.70:
            rules.append((("below", symbol), p * (1 - distance), rule_id))
        elif r < 0.90:
            side = 1 if rng.random() < 0.5 else -1
            kind = rng.choice(("cross_up", "cross_down", "cross_any"))
            rules.append(((kind, symbol), p * (1 + side * distance), rule_id))
        else:
            kind = rng.choice(("pct_up", "pct_down", "pct_any"))
            rules.append(((kind, symbol, rng.choice(WINDOWS)), rng.uniform(3, 30), rule_id))
    return rules


def naive_scan(rules: list[tuple[Key, float, int]], batch: dict[str, Any], last: dict[str, float],
               change: dict[tuple[str, int], float], fired_ids: set[int]) -> int:  # fmt: skip
    """The baseline: every live rule checked against the batch's prices."""
    prices = {u["symbol"]: u["price"] for u in batch["updates"]}
    fired = 0
    for key, threshold, rule_id in rules:
        if rule_id in fired_ids:
            continue
        kind, symbol = key[0], key[1]
        price = prices.get(symbol)  # type: ignore[call-overload]
        if price is None:
            continue
        prev = last.get(symbol)  # type: ignore[call-overload]
        hit = False
        if kind == "above":
            hit = price >= threshold
        elif kind == "below":
            hit = price <= threshold
        elif kind in ("cross_up", "cross_down", "cross_any"):
            if prev is not None:
                up = prev < threshold <= price
                down = price < threshold <= prev
                hit = (up and kind != "cross_down") or (down and kind != "cross_up")
        else:
            c = change.get((symbol, key[2]))  # type: ignore[arg-type]
            if c is not None:
                value = {"pct_up": c, "pct_down": -c, "pct_any": abs(c)}[kind]  # type: ignore[index]
                hit = value >= threshold
        if hit:
            fired_ids.add(rule_id)
            fired += 1
    return fired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--naive-batches", type=int, default=5)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--sigma", type=float, default=0.005, help="per-tick price move (0.005 = 0.5 %%)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    symbols = [f"S{i:03d}" for i in range(args.symbols)]
    base = {s: 10 ** rng.uniform(-2, 5) for s in symbols}
    reference = {(s, w): base[s] for s in symbols for w in WINDOWS}

    rules = make_rules(args.rules, symbols, base, rng)
    source = ReferencePrices(reference)
    clock = FakeClock(wall=source.t0)
    engine = AlertEngine(prices=source, clock=clock)
    gc.collect()
    rss0 = rss_bytes()
    started = time.perf_counter()
    engine.index.bulk_load(rules)
    build_s = time.perf_counter() - started
    gc.collect()
    rss1 = rss_bytes()
    index_bytes = engine.index.nbytes()

    # Batches: a random walk per symbol (sigma per tick), every symbol each tick.
    prices = dict(base)
    batches = []
    for _ in range(args.batches):
        for s in symbols:
            prices[s] *= 1 + rng.gauss(0, args.sigma)
        batches.append({"updates": [{"symbol": s, "price": prices[s]} for s in symbols], "timestamp": 0})

    # Prime crossings with the opening prices (no rule fires on a first tick). The naive
    # scan runs on the same batches right after the engine (interleaved, so both see
    # the same machine load); fewer of them, it is slow.
    engine.last_prices.update(base)
    times, fired = [], []
    naive_times, naive_fired = [], []
    fired_ids: set[int] = set()
    last = dict(base)
    for i, batch in enumerate(batches):
        source.now = source.t0 + timedelta(seconds=i + 1)
        clock.set(source.now)
        t = time.perf_counter()
        taken = engine.match(batch, source.now)
        times.append(time.perf_counter() - t)
        fired.append(sum(len(g.ids) for g in taken))
        if i < args.naive_batches:
            change = {(u["symbol"], w): (u["price"] - base[u["symbol"]]) / base[u["symbol"]] * 100
                      for u in batch["updates"] for w in WINDOWS}  # fmt: skip
            t = time.perf_counter()
            naive_fired.append(naive_scan(rules, batch, last, change, fired_ids))
            naive_times.append(time.perf_counter() - t)
            last.update({u["symbol"]: u["price"] for u in batch["updates"]})

    ms = [x * 1000 for x in times]
    naive_ms = [x * 1000 for x in naive_times]
    ratios = [n / e for n, e in zip(naive_times, times, strict=False)]
    version = sys.version.split()[0]
    print(f"rules: {args.rules:,} over {args.symbols} symbols; batch: {args.symbols} updates; python {version}")
    print(f"index build (bulk load): {build_s:.2f} s")
    per_rule_arrays, per_rule_rss = index_bytes / args.rules, (rss1 - rss0) / args.rules
    print(f"memory: index arrays {per_rule_arrays:.1f} B/rule; process RSS growth {per_rule_rss:.1f} B/rule")
    p95 = sorted(ms)[max(0, int(len(ms) * 0.95) - 1)]
    print(
        f"engine.match per batch: median {statistics.median(ms):.2f} ms, p95 {p95:.2f} ms, max {max(ms):.2f} ms "
        f"over {len(ms)} batches; fired per batch: median {statistics.median(fired):.0f}"
    )
    print(
        f"naive scan per batch: median {statistics.median(naive_ms):.1f} ms over {len(naive_ms)} batches; "
        f"fired: {naive_fired}"
    )
    print(f"same batches, engine: {fired[: args.naive_batches]}")
    print(f"naive / engine on the same batch (median of {len(ratios)}): {statistics.median(ratios):.0f}x")
    print(f"goal <= 50 ms per batch: {'met' if statistics.median(ms) <= 50 else 'NOT met'}")


if __name__ == "__main__":
    main()
