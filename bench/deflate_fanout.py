"""Fan-out to compressed connections: shared frames vs per-connection deflate contexts.

Browsers always offer permessage-deflate. The gateway negotiates it without server
context takeover, so the hub compresses each publication once and writes the same bytes
to every compressed subscriber (`realtime_project/gateway/direct.py`);
REALTIME_DEFLATE_CONTEXT_TAKEOVER=1 keeps uvicorn's per-connection contexts (each
delivery compressed again). Same run, same machine, both settings:

- 1,000 subscribers offering permessage-deflate (the Node `ws` generator: the C one
  speaks no extensions), 10 msg/s for 5 s: server CPU per delivery, p50/p99;
- 5,000 idle subscribed compressed connections: RSS per connection;
- bytes on the wire for ~240 B single-symbol price updates, each way (zlib, the same
  parameters as the server: 12-bit window, memLevel 5).

Usage: .venv/bin/python -m bench.deflate_fanout
"""

from __future__ import annotations

import json
import os
import random
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")

from bench.fanout import Gateway, ensure_loadgen, idle_memory, run_load

KEYS = ("deliveries_per_s", "p50_ms", "p99_ms", "lost", "server_cpu_us_per_delivery")


def price_updates(n: int = 500) -> list[bytes]:
    rng = random.Random(1)
    out = []
    for i in range(n):
        symbol = rng.choice(["BTC", "ETH", "SOL", "ADA", "XRP", "DOGE"])
        data = {
            "symbol": symbol,
            "price": round(rng.uniform(0.1, 97000), 4),
            "change24h": round(rng.uniform(-8, 8), 3),
            "volume24h": round(rng.uniform(1e5, 1e10), 2),
            "timestamp": 1764100000000 + i * 1000,
            "sources": ["binance", "coinbase", "kraken"],
            "stale": False,
        }
        frame = {"type": "message", "channel": f"prices:{symbol}", "seq": 1000 + i, "epoch": "9f2c01ab", "data": data}
        out.append(json.dumps(frame, separators=(",", ":")).encode())
    return out


def wire_ratios() -> dict[str, float]:
    messages = price_updates()
    raw = sum(map(len, messages))
    shared = zlib.compressobj(wbits=-12, memLevel=5)
    takeover = sum(len((shared.compress(m) + shared.flush(zlib.Z_SYNC_FLUSH))[:-4]) for m in messages)

    def alone(m: bytes) -> int:
        enc = zlib.compressobj(wbits=-12, memLevel=5)
        return len((enc.compress(m) + enc.flush(zlib.Z_SYNC_FLUSH))[:-4])

    return {
        "avg_message_bytes": round(raw / len(messages)),
        "context_takeover": round(takeover / raw, 3),
        "no_context_takeover": round(sum(map(alone, messages)) / raw, 3),
    }


def main() -> None:
    ensure_loadgen("node")
    results: dict[str, object] = {"wire": wire_ratios()}
    for label, takeover in (("shared (default)", "0"), ("per-connection", "1")):
        gateway = Gateway("uvicorn", f"df{takeover}{os.getpid()}")
        gateway.env["REALTIME_DEFLATE_CONTEXT_TAKEOVER"] = takeover
        with gateway:
            run_load(gateway, "ours", 1000, 5, 2, "node", deflate=True)  # warm-up
            load = run_load(gateway, "ours", 1000, 10, 5, "node", deflate=True)
        gateway = Gateway("uvicorn", f"dm{takeover}{os.getpid()}")
        gateway.env["REALTIME_DEFLATE_CONTEXT_TAKEOVER"] = takeover
        with gateway:
            memory = idle_memory(gateway, "ours", 5000, "node", deflate=True)
        row = {key: load[key] for key in KEYS} | {"kb_per_idle_connection": memory["kb_per_connection"]}
        results[label] = row
        print(f"  {label:18} {row}", flush=True)
    shared, own = results["shared (default)"], results["per-connection"]
    assert isinstance(shared, dict) and isinstance(own, dict)
    results["ratios"] = {
        "cpu_per_delivery_per_connection_over_shared": round(
            own["server_cpu_us_per_delivery"] / max(0.01, shared["server_cpu_us_per_delivery"]), 2
        ),
        "memory_per_connection_over_shared": round(
            own["kb_per_idle_connection"] / max(0.1, shared["kb_per_idle_connection"]), 2
        ),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
