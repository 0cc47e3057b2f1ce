"""Benchmark publisher process: timestamped ~200-byte price-like messages at a fixed rate.

`ours`: the product's `apublish()` (history seq + one group_send per gateway process).
`naive`: `group_send` to the naive group (one layer message per connection).
Both run on one long-lived event loop, as the product's sync publisher does.
Usage: python -m bench.publisher MODE COUNT RATE
       python -m bench.publisher file CHANNEL PAYLOADS.json  (publish each, in order)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")
django.setup()

from channels.layers import get_channel_layer  # noqa: E402

from bench.naive_consumer import NAIVE_GROUP  # noqa: E402
from realtime_project.gateway.api import apublish  # noqa: E402

PAD = "x" * 96  # brings the payload to about 200 bytes, like a PriceUpdate


def message(n: int) -> dict[str, object]:
    return {
        "n": n,
        "t": time.time() * 1000,
        "symbol": "BTC",
        "price": 97000.5 + n % 100,
        "change24h": 1.23,
        "volume24h": 12345.6,
        "pad": PAD,
    }


async def main(mode: str, count: int, rate: float) -> None:
    layer = get_channel_layer()
    start = time.perf_counter()
    cpu0 = time.process_time()
    for n in range(count):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if mode == "ours":
            await apublish("prices:BTC", message(n))
        else:
            await layer.group_send(NAIVE_GROUP, {"type": "price.update", "data": message(n)})
    elapsed = time.perf_counter() - start
    print(json.dumps({"sent": count, "seconds": elapsed, "rate": count / elapsed, "cpu_s": time.process_time() - cpu0}))


async def publish_file(channel: str, path: str) -> None:
    payloads = json.loads(Path(path).read_text())
    for payload in payloads:
        await apublish(channel, payload)
    print(json.dumps({"sent": len(payloads)}))


if __name__ == "__main__":
    if sys.argv[1] == "file":
        asyncio.run(publish_file(sys.argv[2], sys.argv[3]))
    else:
        asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
