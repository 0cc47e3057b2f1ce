"""Publisher process of bench/live_path.py: timestamped ~200-byte messages to many channels.

Message n goes to channel `channel_of(n)` (the hash bench/loadgen/loadgen.c uses), at a
fixed rate, one call per message, or in batches (`batch` > 1: one call per batch).
Modes: `ours` (the product's apublish / apublish_many), `naive` (Channels group_send to
naive.C<k>), `peer` (a plain Redis PUBLISH on peer:C<k>, what the Node peers read).
`CHANNEL` (optional) sends every message to that one channel instead (`prices:CHANNEL`,
`naive.CHANNEL` or `peer:CHANNEL`), `PAD` sets the padding (default 96 bytes).
Prints one JSON line: sent, seconds, rate, cpu_s (this process's CPU time).
Usage: python -m bench.live_publisher MODE COUNT RATE CHANNELS [BATCH [CHANNEL [PAD]]]
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")
django.setup()

import orjson  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402

from realtime_project.gateway.api import apublish, apublish_many  # noqa: E402

PAD = "x" * 96


def channel_of(n: int, channels: int) -> int:
    return ((n * 2654435761) & 0xFFFFFFFF) % channels if channels > 0 else 0


def message(n: int, pad: str = PAD) -> dict[str, object]:
    return {"n": n, "t": time.time() * 1000, "symbol": "BTC", "price": 97000.5 + n % 100, "pad": pad}


async def main(mode: str, count: int, rate: float, channels: int, batch: int, only: str = "", pad: int = 96) -> None:
    layer = get_channel_layer()
    peer = aioredis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    start = time.perf_counter()
    cpu0 = time.process_time()
    # LIVE_PUB_START: the first message number (several publishers share one numbering).
    first = int(os.environ.get("LIVE_PUB_START", "0"))
    count += first
    n = first
    while n < count:
        due = start + (n - first) / rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        size = min(batch, count - n)
        padding = "x" * pad
        items = [(only or f"C{channel_of(k, channels)}", message(k, padding)) for k in range(n, n + size)]
        if mode == "ours":
            if size == 1:
                await apublish(f"prices:{items[0][0]}", items[0][1])
            else:
                await apublish_many([(f"prices:{ch}", data) for ch, data in items])
        elif mode == "naive":
            for ch, data in items:
                await layer.group_send(f"naive.{ch}", {"type": "price.update", "data": data})
        else:
            pipe = peer.pipeline(transaction=False)
            for ch, data in items:
                pipe.publish(f"peer:{ch}", orjson.dumps(data))
            await pipe.execute()
        n += size
    elapsed = time.perf_counter() - start
    out = {
        "sent": count - first,
        "seconds": elapsed,
        "rate": (count - first) / elapsed,
        "cpu_s": time.process_time() - cpu0,
    }
    print(json.dumps(out))
    await peer.aclose()


if __name__ == "__main__":
    args = sys.argv[1:]
    batch = int(args[4]) if len(args) > 4 else 1
    only = args[5] if len(args) > 5 else ""
    pad = int(args[6]) if len(args) > 6 else 96
    asyncio.run(main(args[0], int(args[1]), float(args[2]), int(args[3]), batch, only, pad))
