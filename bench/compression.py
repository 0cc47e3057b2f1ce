"""Bytes on the wire for price batches with and without permessage-deflate.

A real gateway (uvicorn and daphne, Redis layer) is reached through a TCP proxy on
loopback that counts the bytes flowing server→client. A real `websockets` client
subscribes to `prices` with and without offering permessage-deflate; a publisher sends
the same 200 PriceBatch messages (50 symbols each, realistic values) in both runs.

Usage: .venv/bin/python -m bench.compression
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")

BATCHES = 200
SYMBOLS = [f"S{i:02d}" for i in range(50)]


def batch(rng: random.Random, n: int) -> dict[str, Any]:
    now = 1_764_100_000_000 + n * 1000
    updates = []
    for symbol in SYMBOLS:
        price = round(rng.uniform(0.01, 100_000), 6)
        updates.append(
            {
                "symbol": symbol,
                "price": price,
                "change24h": round(rng.uniform(-12, 12), 2),
                "volume24h": round(rng.uniform(1e5, 5e9), 2),
                "timestamp": now,
                "sources": ["binance", "coinbase", "kraken"],
                "source": "aggregate",
                "stale": False,
                "degraded": False,
                "twap": round(price * rng.uniform(0.999, 1.001), 6),
            }
        )
    return {"updates": updates, "timestamp": now}


class CountingProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.down = 0  # server -> client bytes
        self.up = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, down: bool) -> None:
            try:
                while data := await src.read(65536):
                    if down:
                        self.down += len(data)
                    else:
                        self.up += len(data)
                    dst.write(data)
                    await dst.drain()
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True), return_exceptions=True)


async def measure(gw: Any, compression: bool, payloads: list[dict[str, Any]]) -> dict[str, Any]:
    import websockets

    from bench.fanout import publish_payloads

    proxy = CountingProxy(gw.proc.port)
    port = await proxy.start()
    url = f"ws://127.0.0.1:{port}/ws/"
    async with websockets.connect(url, compression="deflate" if compression else None, max_size=None) as ws:
        json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "subscribe", "id": 1, "channel": "prices"}))
        while json.loads(await ws.recv())["type"] != "subscribed":
            pass
        negotiated = [e.name for e in ws.protocol.extensions]
        start = proxy.down
        await asyncio.to_thread(publish_payloads, gw.env, "prices", payloads)
        raw = 0
        for _ in payloads:
            frame = await asyncio.wait_for(ws.recv(), 10)
            raw += len(frame.encode()) if isinstance(frame, str) else len(frame)
        wire = proxy.down - start
    proxy.server.close()
    return {"negotiated": negotiated, "messages": len(payloads), "payload_bytes": raw, "wire_bytes": wire}


async def main() -> None:
    from bench.fanout import Gateway

    rng = random.Random(7)
    payloads = [batch(rng, n) for n in range(BATCHES)]
    results = {}
    for server in ("uvicorn", "daphne"):
        with Gateway(server, f"cmp{secrets.token_hex(3)}") as gw:
            off = await measure(gw, False, payloads)
            on = await measure(gw, True, payloads)
        results[server] = {"off": off, "on": on, "ratio_on_over_off": round(on["wire_bytes"] / off["wire_bytes"], 3)}
        print(
            f"{server:8} without deflate: {off['wire_bytes'] / BATCHES:8.0f} B/batch on the wire "
            f"({off['payload_bytes'] / BATCHES:.0f} B of JSON); with {on['negotiated']}: "
            f"{on['wire_bytes'] / BATCHES:8.0f} B/batch -> {results[server]['ratio_on_over_off']:.3f} of the bytes",
            flush=True,
        )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
