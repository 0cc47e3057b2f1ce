"""Price tick benchmark: 500 symbols x 4 local sources, poll → aggregate → persist → publish.

Usage:
    .venv/bin/python -m bench.prices_tick [--symbols 500] [--ticks 20] [--redis URL | --no-redis] [--tune-gc]

Issue #4 goals: aggregation of 500 symbols ≤ 5 ms; a full tick against local sources
≤ 250 ms. Every figure comes with a baseline measured in the same run:

- **aggregation** vs a naive aggregator (statistics.median, outliers judged all at
  once, TWAP by scanning the window's samples every time) on identical inputs:
  500 symbols x 4 quotes, 10 % of symbols with one outlier venue, a 5-minute TWAP
  window already holding 150 samples per symbol (2 s ticks);
- **full tick** (the real `PriceTicker`: poll the four fake APIs in a separate process
  over HTTP, aggregate, upsert candles and latest prices, publish 500 `prices:{SYMBOL}`
  + one `prices` batch through the gateway API, Redis history and layer) vs the same
  tick with the sources polled one after another (no concurrency). "moving" ticks
  publish every symbol (worst case); "quiet" ticks publish nothing (change-driven).

Coinbase has no batch ticker and allows 10 requests/s, so its adapter polls at most
10 requests per tick round-robin: that is part of the measured tick, by design.

`--tune-gc` runs everything after start-up with the garbage-collector settings of the
Celery worker that runs the tick in production (realtime_project/celery.py: `gc.freeze()`
of the start-up objects, young threshold 50,000); by default the collector is Python's.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def setup_django(redis_url: str | None) -> str:
    db = Path(tempfile.mkdtemp(prefix="prices-bench-")) / "db.sqlite3"
    prefix = f"pb{secrets.token_hex(3)}"
    os.environ.update(
        DATABASE_URL=f"sqlite:///{db}",
        DJANGO_SETTINGS_MODULE="realtime_project.settings",
        PRICES_LIVE_SOURCES="1",
        PRICES_SIMULATED="0",
        REALTIME_KEY_PREFIX=prefix,
        CHANNEL_PREFIX=prefix,
        CACHE_PREFIX=prefix,
        LOG_LEVEL="ERROR",
    )
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
        # Production mode refuses the development key (realtime_project/security.py).
        os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    else:
        os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return prefix


def seed(symbols: int, base_url: str) -> None:
    from bench.prices_fake_exchanges import ids
    from prices.models import Source, Symbol, SymbolMapping

    Symbol.objects.all().delete()
    sources = {s.kind: s for s in Source.objects.exclude(kind="simulated")}
    for kind, source in sources.items():
        source.base_url = f"{base_url}/{kind}"
        source.poll_interval = 0
        source.save()
    Source.objects.filter(kind="simulated").update(enabled=False)
    rows = Symbol.objects.bulk_create([Symbol(symbol=f"S{i:04d}", name=f"Synthetic {i}") for i in range(symbols)])
    SymbolMapping.objects.bulk_create(
        [
            SymbolMapping(symbol=row, source=sources[kind], external_id=external)
            for i, row in enumerate(rows)
            for kind, external in ids(i).items()
        ]
    )


# --- aggregation alone ----------------------------------------------------------------


def naive_aggregate(
    quotes: dict[str, list[tuple[str, float, float]]], samples: dict[str, list[tuple[float, float]]], now: float
) -> dict[str, tuple[float, float]]:
    """The obvious implementation the aggregator is measured against."""
    out: dict[str, tuple[float, float]] = {}
    for symbol, qs in quotes.items():
        fresh = [(s, p) for s, p, t in qs if now - t <= 120]
        prices = [p for _, p in fresh]
        kept = [p for i, p in enumerate(prices) if abs(p - statistics.median(prices[:i] + prices[i + 1 :])) / p <= 0.02]
        price = statistics.median(kept or prices)
        series = samples[symbol]
        series.append((now, price))
        window = [(t, p) for t, p in series if t >= now - 300]
        area = sum(p * (t2 - t1) for (t1, p), (t2, _) in itertools.pairwise(window))
        twap = area / (window[-1][0] - window[0][0]) if len(window) > 1 else price
        out[symbol] = (price, twap)
    return out


def bench_aggregation(symbols: int, runs: int) -> dict[str, float]:
    from prices.aggregation import PriceAggregator
    from prices.quotes import Quote
    from tests.support.clock import FakeClock

    rng = random.Random(7)
    names = [f"S{i:04d}" for i in range(symbols)]
    venues = ["binance", "coinbase", "coingecko", "kraken"]
    base = {s: 10 ** rng.uniform(-2, 5) for s in names}
    clock = FakeClock(wall=1_764_100_000.0)
    agg = PriceAggregator(stale_after=120, outlier_bound=0.02, min_sources=2, twap_window=300, clock=clock)
    agg.start(venues)
    naive_quotes: dict[str, list[tuple[str, float, float]]] = {}
    naive_samples: dict[str, list[tuple[float, float]]] = {s: [] for s in names}

    def feed() -> None:
        for s in names:
            base[s] *= 1 + rng.gauss(0, 0.001)
            row = []
            for v in venues:
                p = base[s] * rng.uniform(0.999, 1.001)
                if v == "kraken" and hash(s) % 10 == 0:
                    p *= 1.2  # a venue 20 % off: an outlier
                agg.on_price(Quote(s, v, p, int(clock.time() * 1000), 1.0, 1e6))
                row.append((v, p, clock.time()))
            naive_quotes[s] = row

    # Fill the TWAP window: 150 ticks of 2 s (untimed).
    for _ in range(150):
        feed()
        agg.aggregate(names)
        naive_aggregate(naive_quotes, naive_samples, clock.time())
        clock.advance(2)
    ours: list[float] = []
    ours_cpu: list[float] = []
    naive: list[float] = []
    for _ in range(runs):
        feed()
        # Start both sides from a collected heap: otherwise a full collection triggered by
        # the baseline's garbage lands in our timing (or the other way round).
        gc.collect()
        t, c = time.perf_counter(), time.thread_time()
        result = agg.aggregate(names)
        ours.append(time.perf_counter() - t)
        ours_cpu.append(time.thread_time() - c)
        gc.collect()
        t = time.perf_counter()
        naive_result = naive_aggregate(naive_quotes, naive_samples, clock.time())
        naive.append(time.perf_counter() - t)
        # Both must agree on the price, or the comparison is meaningless.
        s = names[3]
        assert abs(result[s].price - naive_result[s][0]) / naive_result[s][0] < 1e-9
        clock.advance(2)
    return {
        "ours_p50_ms": statistics.median(ours) * 1000,
        "ours_p95_ms": sorted(ours)[int(len(ours) * 0.95)] * 1000,
        "ours_cpu_p50_ms": statistics.median(ours_cpu) * 1000,
        "naive_p50_ms": statistics.median(naive) * 1000,
        "speedup": statistics.median(naive) / statistics.median(ours),
    }


# --- full tick ------------------------------------------------------------------------


def control(base_url: str, mode: str) -> None:
    with urllib.request.urlopen(f"{base_url}/control/{mode}", timeout=5) as resp:
        resp.read()


def run_ticks(ticker: Any, n: int) -> dict[str, Any]:
    totals: list[float] = []
    parts: dict[str, list[float]] = {}
    published: list[int] = []
    for _ in range(n):
        report = ticker.tick()
        totals.append(report.timings["total"])
        published.append(len(report.published))
        for key, value in report.timings.items():
            parts.setdefault(key, []).append(value)
        assert not report.failed, report.failed
        time.sleep(0.05)
    return {
        "p50_ms": statistics.median(totals) * 1000,
        "p95_ms": sorted(totals)[int(len(totals) * 0.95)] * 1000,
        "max_ms": max(totals) * 1000,
        "published_per_tick": statistics.median(published),
        "parts_p50_ms": {k: round(statistics.median(v) * 1000, 2) for k, v in parts.items()},
    }


def sequential_polls(due: Any, mappings: Any, conf: Any) -> Any:
    """Baseline: the same polls, one source after another, only once the tick waits for them
    (lazily: no overlap with the rest of the loading either)."""
    from prices.selectors import source_config
    from prices.services.tick import poll_source
    from prices.sources.registry import get_adapter

    return (poll_source(get_adapter(source_config(row, conf)), mappings.get(row.slug, {})) for row in due)


def publish_one_by_one(updates: list[dict[str, Any]], *, timestamp: int) -> dict[str, Any] | None:
    """Baseline: the obvious publishing, one sync `publish()` per channel."""
    from realtime_project.gateway.api import publish

    if not updates:
        return None
    for update in updates:
        publish(f"prices:{update['symbol']}", update)
    batch = {"updates": updates, "timestamp": timestamp}
    publish("prices", batch)
    return batch


def bench_tick(base_url: str, ticks: int) -> dict[str, Any]:
    from prices.services import tick as tick_module
    from prices.services.tick import PriceTicker

    ticker = PriceTicker()
    control(base_url, "moving")
    run_ticks(ticker, 3)  # warm-up: connections, first candles, the Redis history keys
    moving = run_ticks(ticker, ticks)
    control(base_url, "quiet")
    run_ticks(ticker, 2)
    quiet = run_ticks(ticker, ticks)
    control(base_url, "moving")
    original: Callable[..., Any] = PriceTicker.__dict__["_poll_all"]  # the staticmethod object
    PriceTicker._poll_all = staticmethod(sequential_polls)  # type: ignore[method-assign,assignment]
    try:
        sequential = run_ticks(ticker, ticks)
    finally:
        PriceTicker._poll_all = original  # type: ignore[method-assign]
    concurrent_publish = tick_module.publish_prices
    tick_module.publish_prices = publish_one_by_one  # type: ignore[assignment]
    try:
        one_by_one = run_ticks(ticker, ticks)
    finally:
        tick_module.publish_prices = concurrent_publish
    return {
        "moving": moving,
        "quiet": quiet,
        "baseline_sequential_polls_moving": sequential,
        "baseline_publish_one_by_one_moving": one_by_one,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--ticks", type=int, default=20)
    parser.add_argument("--runs", type=int, default=200, help="aggregation runs")
    parser.add_argument("--redis", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--no-redis", action="store_true", help="embedded mode: in-memory layer and history")
    parser.add_argument("--aggregation-only", action="store_true", help="skip the full ticks")
    parser.add_argument("--tune-gc", action="store_true", help="the Celery worker's gc.freeze() and thresholds")
    args = parser.parse_args()
    redis_url = None if args.no_redis else args.redis
    prefix = setup_django(redis_url)
    if args.tune_gc:
        from realtime_project.server import tune_gc

        tune_gc()
    if args.aggregation_only:
        print(json.dumps({k: round(v, 3) for k, v in bench_aggregation(args.symbols, args.runs).items()}))
        return
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.prices_fake_exchanges", "--symbols", str(args.symbols)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        seed(args.symbols, base_url)
        aggregation = bench_aggregation(args.symbols, args.runs)
        tick = bench_tick(base_url, args.ticks)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)
        if redis_url:
            import redis

            client = redis.Redis.from_url(redis_url)
            for key in client.scan_iter(f"{prefix}*", count=1000):
                client.delete(key)
            client.close()
    result = {
        "symbols": args.symbols,
        "sources": 4,
        "mode": "redis" if redis_url else "embedded",
        "gc": "tuned (Celery worker)" if args.tune_gc else "default",
        "aggregation": {k: round(v, 3) for k, v in aggregation.items()},
        "tick": tick,
        "poll_speedup_concurrent_vs_sequential": round(
            tick["baseline_sequential_polls_moving"]["parts_p50_ms"]["poll"] / tick["moving"]["parts_p50_ms"]["poll"], 2
        ),
        "publish_speedup_concurrent_vs_one_by_one": round(
            tick["baseline_publish_one_by_one_moving"]["parts_p50_ms"]["publish"]
            / tick["moving"]["parts_p50_ms"]["publish"],
            2,
        ),
        "goals": {
            "aggregation_le_5ms": aggregation["ours_p95_ms"] <= 5,
            "tick_le_250ms_moving": tick["moving"]["p95_ms"] <= 250,
            "tick_le_250ms_quiet": tick["quiet"]["p95_ms"] <= 250,
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
