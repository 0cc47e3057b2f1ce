"""Fan-out benchmark: N subscribers on one channel, a publisher in another process.

Runs the product's hub (uvicorn websockets-sansio, and daphne) and the naive Channels
baseline (one group membership and one JSON encode per connection) on the same server,
Redis and machine, in the same run, and prints our/baseline ratios:

- fixed load: 1,000 subscribers x 50 msg/s: delivered/s, p50/p99/max latency, loss, dups;
- maximum sustained fan-out with p99 ≤ 100 ms and no loss (rate ramp);
- connect time and server RSS per idle subscribed connection (5,000 connections);
- recovery after a 10 s disconnect with 500 messages published meanwhile;
- server CPU per delivery, and the load generator's CPU (to show it is not the limit).

The load generator is `bench/loadgen/loadgen.c`, a single-threaded epoll WebSocket client
built into var/loadgen with `cc` when its source is newer (issue #3's reference figures
used a C generator); `--loadgen node` runs `bench/loadgen/loadgen.mjs` instead (Node +
`ws`, same contract, two to three times the CPU per delivery).

Usage: .venv/bin/python -m bench.fanout [--quick] [--loadgen {c,node}] [--json out.json]
Needs Redis on 127.0.0.1:6379 (scripts/services.sh), a C compiler, and for
`--loadgen node` Node 20 (`npm ci` in bench/loadgen is run when needed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")

from tests.support.servers import ServerProcess  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
LOADGEN_DIR = ROOT / "bench" / "loadgen"
LOADGEN_C = LOADGEN_DIR / "loadgen.c"
LOADGEN_C_BINARY = ROOT / "var" / "loadgen"
LOADGEN_NODE = LOADGEN_DIR / "loadgen.mjs"
#: Both take the same JSON argument and print the same JSON lines (see loadgen.c).
LOADGENS = ("c", "node")
P99_LIMIT_MS = 100.0


def ensure_loadgen(kind: str = "c") -> list[str]:
    """Build (C) or install (Node) the load generator; return the command that runs it."""
    if kind == "node":
        if not (LOADGEN_DIR / "node_modules" / "ws").exists():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=LOADGEN_DIR, check=True)
        return ["node", str(LOADGEN_NODE)]
    if kind != "c":
        raise ValueError(f"unknown load generator {kind!r}; expected one of {LOADGENS}")
    binary, source = LOADGEN_C_BINARY, LOADGEN_C
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        binary.parent.mkdir(exist_ok=True)
        build = ["cc", "-O2", "-Wall", "-o", str(binary.relative_to(ROOT)), str(source.relative_to(ROOT))]
        subprocess.run(build, cwd=ROOT, check=True)
    return [str(binary)]


def proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS bytes) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    return cpu, rss


class Gateway:
    def __init__(self, server: str, prefix: str) -> None:
        env = dict(os.environ)
        env.update(
            REDIS_URL=REDIS_URL,
            # Production mode refuses the development key (realtime_project/security.py).
            SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
            DATABASE_URL=f"sqlite:///{ROOT / 'var' / 'bench.sqlite3'}",
            REALTIME_KEY_PREFIX=prefix,
            CHANNEL_PREFIX=prefix,
            CACHE_PREFIX=prefix,
            EMBEDDED_SCHEDULER="off",
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
            ASGI_APP="bench.asgi_bench:application",
            REALTIME_HISTORY=json.dumps({"prices": {"size": 1000, "ttl": 3600}}),
            REALTIME_SEND_QUEUE_SIZE="10000",
        )
        self.env = env
        self.proc = ServerProcess(env=env, server=server)

    def __enter__(self) -> Gateway:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=self.env, check=True)
        self.proc.start()
        # Steady state: a snapshot channel always has a latest value (prices publish
        # every tick or heartbeat), so subscribers get it from history, not the database.
        publish_payloads(self.env, "prices:BTC", [{"n": -1, "t": 0, "warmup": True}])
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.stop()

    @property
    def pid(self) -> int:
        assert self.proc.proc is not None
        return self.proc.proc.pid

    def url(self, mode: str) -> str:
        return self.proc.ws_url + ("naive/" if mode == "naive" else "")


class LoadGen:
    def __init__(self, url: str, n: int, mode: str, expect: int, loadgen: str = "c", deflate: bool = False) -> None:
        cfg: dict[str, Any] = {"url": url, "n": n, "mode": mode, "channel": "prices:BTC", "expect": expect}
        if deflate:  # offer permessage-deflate, as browsers do (Node generator only)
            cfg["deflate"] = True
        self.proc = subprocess.Popen(
            [*ensure_loadgen(loadgen), json.dumps(cfg)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ready(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("load generator exited before it was ready")
        return json.loads(line)  # type: ignore[no-any-return]

    def stop(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        stats = json.loads(self.proc.stdout.readline())
        self.proc.wait(10)
        return stats  # type: ignore[no-any-return]


def publish(env: dict[str, str], mode: str, count: int, rate: float) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.publisher", mode, str(count), str(rate)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def publish_payloads(env: dict[str, str], channel: str, payloads: list[dict[str, Any]]) -> None:
    """Publish the given payloads, in order, from a separate publisher process."""
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(payloads, fh)
    try:
        subprocess.run(
            [sys.executable, "-m", "bench.publisher", "file", channel, fh.name], cwd=ROOT, env=env, check=True
        )
    finally:
        os.unlink(fh.name)


def run_load(
    gw: Gateway, mode: str, subscribers: int, rate: float, seconds: float, loadgen: str = "c", deflate: bool = False
) -> dict[str, Any]:
    count = max(1, int(rate * seconds))
    gen = LoadGen(gw.url(mode), subscribers, mode, count, loadgen, deflate)
    ready = gen.ready()
    time.sleep(0.5)
    cpu0, _ = proc_stats(gw.pid)
    pub = publish(gw.env, mode, count, rate)
    time.sleep(1.5)  # let the tail arrive
    cpu1, _ = proc_stats(gw.pid)
    stats = gen.stop()
    delivered = stats["unique"]
    return {
        "mode": mode,
        "subscribers": subscribers,
        "rate": rate,
        "published": pub["sent"],
        "publish_rate": round(pub["rate"], 1),
        "connect_s": round(ready["connect_s"], 2),
        "deliveries_per_s": round(delivered / pub["seconds"], 0),
        "p50_ms": stats["p50_ms"],
        "p99_ms": stats["p99_ms"],
        "max_ms": stats["max_ms"],
        "lost": stats["lost"],
        "duplicates": stats["duplicates"],
        "server_cpu_us_per_delivery": round((cpu1 - cpu0) * 1e6 / max(1, delivered), 1),
        "loadgen_cpu_s": round(stats["loadgen_cpu_s"], 2),
        "window_s": round(pub["seconds"] + 1.5, 2),
    }


def sustained(
    gw: Gateway, mode: str, grid: list[tuple[int, list[float]]], seconds: float, loadgen: str = "c"
) -> dict[str, Any]:
    """Best deliveries/s with p99 <= 100 ms and no loss over (subscribers, rates) ramps.

    The naive baseline's p99 is set by one publication's fan-out time (subscribers x
    its per-delivery cost), so its best point has fewer subscribers: each ramp stops
    at its first failing rate.
    """
    best: dict[str, Any] | None = None
    tried = []
    for subscribers, rates in grid:
        for rate in rates:
            result = run_load(gw, mode, subscribers, rate, seconds, loadgen)
            tried.append(result)
            ok = result["lost"] == 0 and result["p99_ms"] is not None and result["p99_ms"] <= P99_LIMIT_MS
            print(f"  {mode} {rate:>6} msg/s x {subscribers}: {fmt(result)} {'ok' if ok else 'FAIL'}", flush=True)
            if not ok:
                break
            if best is None or result["deliveries_per_s"] > best["deliveries_per_s"]:
                best = result
    return {"best": best, "tried": tried}


def idle_memory(gw: Gateway, mode: str, n: int, loadgen: str = "c", deflate: bool = False) -> dict[str, Any]:
    _, rss0 = proc_stats(gw.pid)
    gen = LoadGen(gw.url(mode), n, mode, 1, loadgen, deflate)
    ready = gen.ready()
    time.sleep(2.0)
    _, rss1 = proc_stats(gw.pid)
    gen.stop()
    return {
        "mode": mode,
        "connections": n,
        "connect_s": round(ready["connect_s"], 2),
        "rss_before_mb": round(rss0 / 2**20, 1),
        "rss_after_mb": round(rss1 / 2**20, 1),
        "kb_per_connection": round((rss1 - rss0) / n / 1024, 1),
    }


async def recovery(gw: Gateway, disconnect_s: float, count: int) -> dict[str, Any]:
    import websockets

    url = gw.url("ours")
    async with websockets.connect(url) as ws:
        json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "subscribe", "id": 1, "channel": "prices:BTC"}))
        reply = json.loads(await ws.recv())
        while reply.get("type") != "subscribed":
            reply = json.loads(await ws.recv())
    epoch, seq = reply["epoch"], reply["seq"]
    started = time.monotonic()
    await asyncio.to_thread(publish, gw.env, "ours", count, count / disconnect_s)
    offline = time.monotonic() - started
    async with websockets.connect(url) as ws:
        json.loads(await ws.recv())
        await ws.send(
            json.dumps({"type": "subscribe", "id": 2, "channel": "prices:BTC", "since": {"epoch": epoch, "seq": seq}})
        )
        got: list[dict[str, Any]] = []
        recovered = None
        while len(got) < count:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if frame["type"] == "subscribed":
                recovered = frame.get("recovered")
            elif frame["type"] == "message":
                got.append(frame)
    ns = [m["data"]["n"] for m in got]
    seqs = [m["seq"] for m in got]
    return {
        "offline_s": round(offline, 1),
        "published_while_offline": count,
        "recovered": recovered,
        "replayed": len(got),
        "in_order": ns == sorted(ns) and seqs == list(range(seq + 1, seq + 1 + len(seqs))),
        "duplicates": len(ns) - len(set(ns)),
        "complete": sorted(ns) == list(range(count)),
    }


def fmt(r: dict[str, Any]) -> str:
    return (
        f"{r['deliveries_per_s']:>8.0f}/s p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms max {r['max_ms']:.0f} ms "
        f"lost {r['lost']} dup {r['duplicates']} cpu {r['server_cpu_us_per_delivery']} µs/delivery "
        f"(loadgen cpu {r['loadgen_cpu_s']} s over {r['window_s']} s)"
        if r["p99_ms"] is not None
        else f"nothing delivered, lost {r['lost']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument(
        "--loadgen", choices=LOADGENS, default="c", help="load generator: C (default, cheap) or Node + ws"
    )
    parser.add_argument("--json", help="write all results to this file")
    args = parser.parse_args()
    loadgen = args.loadgen
    ensure_loadgen(loadgen)
    (ROOT / "var").mkdir(exist_ok=True)
    subs = 200 if args.quick else 1000
    seconds = 3 if args.quick else 10
    idle = 500 if args.quick else 5000
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "loadgen": loadgen}
    prefix = f"bench{secrets.token_hex(3)}"

    print(f"== fixed load: {subs} subscribers x 50 msg/s for {seconds} s", flush=True)
    fixed = {}
    for label, server, mode in [
        ("hub-uvicorn", "uvicorn", "ours"),
        ("hub-daphne", "daphne", "ours"),
        ("naive-uvicorn", "uvicorn", "naive"),
    ]:
        with Gateway(server, f"{prefix}{label[:3]}{server[0]}") as gw:
            fixed[label] = run_load(gw, mode, subs, 50, seconds, loadgen)
            print(f"  {label:14} {fmt(fixed[label])}", flush=True)
    results["fixed"] = fixed

    print("== maximum sustained fan-out (p99 <= 100 ms, no loss)", flush=True)
    ramp_seconds = 3 if args.quick else 5
    with Gateway("uvicorn", f"{prefix}mx") as gw:
        ours = sustained(gw, "ours", [(subs, [10, 20, 30, 40, 50, 60, 80, 100, 120, 150])], ramp_seconds, loadgen)
    with Gateway("uvicorn", f"{prefix}mn") as gw:
        naive = sustained(gw, "naive", [(100, [5, 10, 20, 40, 80]), (250, [2, 5, 10, 20])], ramp_seconds, loadgen)
    results["sustained"] = {"hub": ours, "naive": naive}

    print(f"== idle memory: {idle} subscribed connections", flush=True)
    with Gateway("uvicorn", f"{prefix}im") as gw:
        mem_ours = idle_memory(gw, "ours", idle, loadgen)
    with Gateway("uvicorn", f"{prefix}in") as gw:
        mem_naive = idle_memory(gw, "naive", idle, loadgen)
    results["memory"] = {"hub": mem_ours, "naive": mem_naive}
    print(f"  hub   {mem_ours}\n  naive {mem_naive}", flush=True)

    print("== recovery after a 10 s disconnect with 500 messages", flush=True)
    with Gateway("uvicorn", f"{prefix}rc") as gw:
        results["recovery"] = asyncio.run(recovery(gw, 3 if args.quick else 10, 500))
    print(f"  {results['recovery']}", flush=True)

    best_ours = (ours["best"] or {}).get("deliveries_per_s", 0)
    best_naive = (naive["best"] or {}).get("deliveries_per_s", 0)
    ratios = {
        "fixed_delivered_hub_vs_naive": round(
            fixed["hub-uvicorn"]["deliveries_per_s"] / max(1, fixed["naive-uvicorn"]["deliveries_per_s"]), 2
        ),
        "fixed_p99_naive_over_hub": round(
            (fixed["naive-uvicorn"]["p99_ms"] or 0) / max(0.001, fixed["hub-uvicorn"]["p99_ms"] or 0.001), 1
        ),
        "uvicorn_vs_daphne_cpu_per_delivery": round(
            fixed["hub-daphne"]["server_cpu_us_per_delivery"]
            / max(0.01, fixed["hub-uvicorn"]["server_cpu_us_per_delivery"]),
            2,
        ),
        "sustained_hub_vs_naive": round(best_ours / best_naive, 1) if best_naive else None,
        "memory_naive_over_hub": round(mem_naive["kb_per_connection"] / max(0.1, mem_ours["kb_per_connection"]), 2),
        "connect_time_naive_over_hub": round(mem_naive["connect_s"] / max(0.01, mem_ours["connect_s"]), 2),
    }
    results["ratios"] = ratios
    print("== ratios (ours / baseline, same run)", flush=True)
    for key, value in ratios.items():
        print(f"  {key}: {value}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
