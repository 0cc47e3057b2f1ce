"""Fake venues for bench/prices_streams.py: the four streams and their REST APIs, one market.

One process runs the four WebSocket venues of the tests (`tests/prices/venues.py`: each
speaks its venue's protocol) and the REST fakes (`tests/prices/fakes.py`) over one
simulated market of N symbols. Every symbol's price moves at random times (exponential,
mean `--mean-interval` s) and every `--burst-every` s all symbols move at once. On a move,
Coinbase, Kraken and OKX send a ticker at once (they push on trades / BBO changes);
Binance sends its `@ticker` every 1,000 ms per symbol, as documented; Coinbase sends a
heartbeat per product every second, Kraken one per connection. Each message's event time
is its send time. The REST fakes serve the same prices with the time of the move.

Prints one JSON line with the URLs, then on "stats" (stdin) a JSON line of counters, on
"moves START END" the moves of that window ([symbol, price, epoch s]); ends on "stop" or
end of input.

Usage: python -m bench.prices_venues N [--mean-interval S] [--burst-every S] [--seed K]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.prices.fakes import Asset, FakeExchanges  # noqa: E402
from tests.prices.venues import Asset as VenueAsset  # noqa: E402
from tests.prices.venues import FakeVenue  # noqa: E402

KINDS = ("binance", "coinbase", "kraken", "okx")


def venue_ids(symbol: str) -> dict[str, str]:
    """The bench symbol's id on each venue (stream ids; Kraken's REST id differs)."""
    return {"binance": f"{symbol}USDT", "coinbase": f"{symbol}-USD", "kraken": f"{symbol}/USD", "okx": f"{symbol}-USDT"}


def rest_ids(symbol: str) -> dict[str, str]:
    return {"binance": f"{symbol}USDT", "coinbase": f"{symbol}-USD", "kraken": f"{symbol}USD", "okx": f"{symbol}-USDT"}


class Market:
    """True prices; each move is appended to `moves` with its time (read by every venue's
    emitter, and by the benchmark's loss check)."""

    def __init__(self, symbols: list[str], seed: int) -> None:
        self.rng = random.Random(seed)
        self.prices = {s: round(self.rng.uniform(1.0, 1000.0), 4) for s in symbols}
        self.moves: list[tuple[str, float, float]] = []
        self.lock = threading.Lock()

    def move(self, symbol: str) -> None:
        step = self.rng.gauss(0.0, 0.001)  # about 10 bp: well above the 1 bp publication threshold
        with self.lock:
            price = round(self.prices[symbol] * (1 + step), 6)
            self.prices[symbol] = price
            self.moves.append((symbol, price, time.time()))

    def moves_between(self, start: float, end: float) -> list[tuple[str, float, float]]:
        with self.lock:
            return [m for m in self.moves if start <= m[2] <= end]


async def emitter(venue: FakeVenue, market: Market, counters: dict[str, int]) -> None:
    """Runs on the venue's loop: send a ticker for every move, as soon as it is seen."""
    cursor = 0
    kind = venue.kind
    while True:
        await asyncio.sleep(0.002)
        with market.lock:
            moves = market.moves[cursor:]
            cursor = len(market.moves)
        for symbol, price, _ in moves:
            vid = venue_ids(symbol)[kind]
            asset = venue.market.get(vid)
            if asset is None:
                continue
            asset.price = price
            if kind != "binance":  # Binance only pushes its 1 s ticker
                venue._send(vid, venue._ticker(vid, asset, int(time.time() * 1000), None), trades=False)
                counters[kind] += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int)
    parser.add_argument("--mean-interval", type=float, default=4.0)
    parser.add_argument("--burst-every", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    symbols = [f"S{i}" for i in range(args.n)]
    market = Market(symbols, args.seed)
    venues = {kind: FakeVenue(kind, heartbeat=1.0).start() for kind in KINDS}
    rest = FakeExchanges().start()
    for symbol, price in market.prices.items():
        for kind, vid in venue_ids(symbol).items():
            venues[kind].market[vid] = VenueAsset(price, price / 1.01, 1_000.0)
        for kind, rid in rest_ids(symbol).items():
            getattr(rest.market, kind)[rid] = Asset(price, 1.0, 1_000.0, time.time())
    counters = dict.fromkeys(KINDS, 0)
    emitters = [asyncio.run_coroutine_threadsafe(emitter(v, market, counters), v.loop) for v in venues.values()]
    moves = {"moves": 0, "bursts": 0}
    stop = threading.Event()

    def drive() -> None:
        rng = random.Random(args.seed + 1)
        due = {s: time.monotonic() + rng.expovariate(1 / args.mean_interval) for s in symbols}
        next_burst = time.monotonic() + args.burst_every
        while not stop.is_set():
            now = time.monotonic()
            moved = [s for s, at in due.items() if at <= now]
            if now >= next_burst:
                moved = symbols
                next_burst = now + args.burst_every
                moves["bursts"] += 1
            for s in moved:
                market.move(s)
                due[s] = now + rng.expovariate(1 / args.mean_interval)
                price = market.prices[s]
                for kind, rid in rest_ids(s).items():  # the REST APIs see the move at its time
                    asset = getattr(rest.market, kind)[rid]
                    asset.price, asset.updated = price, time.time()
            moves["moves"] += len(moved)
            time.sleep(0.002)

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    print(json.dumps({"streams": {k: v.url for k, v in venues.items()}, "rest": rest.base_urls()}), flush=True)
    for line in sys.stdin:
        word = line.strip()
        if word == "stats":
            sent: dict[str, Any] = {}
            for kind, venue in venues.items():
                sent[kind] = {"tickers_on_move": counters[kind], "connections": venue.total_connections}
            print(json.dumps({"moves": moves["moves"], "bursts": moves["bursts"], "venues": sent}), flush=True)
        elif word.startswith("moves "):  # "moves START END": the moves in that window (epoch s)
            start, end = (float(x) for x in word.split()[1:3])
            print(json.dumps(market.moves_between(start, end)), flush=True)
        elif word == "stop":
            break
    stop.set()
    for future in emitters:
        future.cancel()
    for venue in venues.values():
        venue.stop()
    rest.stop()


if __name__ == "__main__":
    main()
