"""The four fake exchanges of the prices tests, serving N synthetic symbols, as a process.

Usage (started by bench/prices_tick.py): python -m bench.prices_fake_exchanges --symbols 500
Prints the base URL on stdout. `GET /control/moving` makes every request move prices
(every symbol changes each tick), `GET /control/quiet` freezes them.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from typing import Any

from tests.prices.fakes import Asset, FakeExchanges


def ids(i: int) -> dict[str, str]:
    return {
        "coingecko": f"coin-{i:04d}",
        "binance": f"C{i:04d}USDT",
        "coinbase": f"C{i:04d}-USD",
        "kraken": f"C{i:04d}USD",
    }


class BenchExchanges(FakeExchanges):
    def __init__(self, symbols: int) -> None:
        super().__init__()
        self.moving = False
        self.rng = random.Random(1)
        for i in range(symbols):
            base = 10 ** self.rng.uniform(-2, 5)
            for source, external in ids(i).items():
                # Each venue a little off the others, as real venues are.
                getattr(self.market, source)[external] = Asset(base * self.rng.uniform(0.999, 1.001), 1.0, 1e4)

    def route(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if path == "/control/moving":
            self.moving = True
            return 200, {"moving": True}
        if path == "/control/quiet":
            self.moving = False
            return 200, {"moving": False}
        if self.moving:
            now = time.time()
            book = {"coingecko": self.market.coingecko, "binance": self.market.binance}
            book.update(coinbase=self.market.coinbase, kraken=self.market.kraken)
            name = path.split("/")[1]
            for asset in book.get(name, {}).values():
                asset.price *= 1 + self.rng.gauss(0, 0.002)
                asset.updated = now
        return super().route(path, query)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=500)
    args = parser.parse_args()
    server = BenchExchanges(args.symbols).start()
    print(server.url, flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin
    finally:
        server.stop()


if __name__ == "__main__":
    main()
