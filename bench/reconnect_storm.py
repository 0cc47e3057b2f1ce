"""Reconnection storm: N clients on a real gateway, restart it, time until 99 % are back and recovered.

Usage:
    .venv/bin/python -m bench.reconnect_storm [--clients 2000] [--rate 5] [--server uvicorn]

What it does (issue #7, benchmark):
1. Starts a real gateway (`manage.py serve`, uvicorn by default) on Redis with a unique
   key prefix and a throwaway SQLite database.
2. Connects N asyncio `websockets` clients that behave like the browser client
   (client/src/core): answer pings, honour `reconnect.after_ms` (clamped to 30 s),
   otherwise full-jitter backoff (500 ms base, 4 s cap), and resubscribe with
   `since: {epoch, seq}`. The time to connect all N at once is the **baseline**.
3. Publishes to the channel at a steady rate from this process (through Redis, so it
   goes on while the gateway is down).
4. Restarts the gateway (SIGTERM: drain with jittered `reconnect` frames, close 1012;
   then a new process on the same port) and measures, from the moment the new process
   answers /healthz: the time until 99 % (and 100 %) of clients are reconnected and
   **recovered** (they have applied every message published up to that moment), the
   peak connect rate, and — after publishing stops — every client's sequence: lost,
   duplicated or out-of-order messages are counted (goal: none).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHANNEL = "prices:STORM"
#: Same policy as the TypeScript client (client/src/core/backoff.ts, reconnection.ts).
BACKOFF_BASE_S, BACKOFF_CAP_S, MAX_SERVER_DELAY_S, STABLE_AFTER_S = 0.5, 4.0, 30.0, 5.0


@dataclass
class Client:
    index: int
    epoch: str | None = None
    last_seq: int = 0
    first_seq: int | None = None
    received: int = 0
    duplicates: int = 0
    gaps: int = 0
    connects: list[float] = field(default_factory=list)
    recovered_flags: list[bool] = field(default_factory=list)
    caught_up_at: float | None = None
    connected: bool = False
    subscribe_errors: int = 0
    skipped_by_reset: int = 0


def since_of(c: Client) -> dict[str, Any]:
    return {} if c.epoch is None else {"since": {"epoch": c.epoch, "seq": c.last_seq}}


@dataclass
class Shared:
    url: str
    stop: bool = False
    #: Channel position when the restarted gateway became healthy (None before the restart).
    target_seq: int | None = None
    restart_started: bool = False


def full_jitter(attempt: int) -> float:
    return random.random() * min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** min(attempt, 20))


async def run_client(c: Client, shared: Shared) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import WebSocketException

    attempt = 0
    while not shared.stop:
        hint: float | None = None
        opened_at = 0.0
        try:
            async with connect(shared.url, open_timeout=15, ping_interval=None, close_timeout=2, max_queue=None) as ws:
                welcome = json.loads(await ws.recv())
                assert welcome["type"] == "welcome", welcome
                opened_at = time.monotonic()
                c.connects.append(opened_at)
                c.connected = True
                frame: dict[str, Any] = {"type": "subscribe", "id": 1, "channel": CHANNEL}
                await ws.send(json.dumps(frame | since_of(c)))
                async for raw in ws:
                    f = json.loads(raw)
                    kind = f.get("type")
                    if kind == "message":
                        handle_message(c, f, shared)
                    elif kind == "subscribed":
                        if "recovered" in f:
                            c.recovered_flags.append(bool(f["recovered"]))
                            if not f["recovered"]:
                                # Too far behind the bounded history: a snapshot replaces
                                # what was missed (correct for a price, but counted).
                                c.skipped_by_reset += max(0, f["seq"] - c.last_seq)
                                c.epoch, c.last_seq = f["epoch"], f["seq"]
                        else:
                            c.epoch, c.last_seq = f["epoch"], f["seq"]
                            if c.first_seq is None:
                                c.first_seq = f["seq"] + 1
                    elif kind == "ping":
                        await ws.send(json.dumps({"type": "pong", "id": f["id"]}))
                    elif kind == "error" and f.get("id") == 1:
                        # A transient refusal (the gateway's store was busy): retry like
                        # the browser client (TRANSIENT_SUBSCRIBE_ERRORS), with jitter.
                        c.subscribe_errors += 1
                        await asyncio.sleep(full_jitter(c.subscribe_errors - 1))
                        await ws.send(json.dumps(frame | since_of(c)))
                    elif kind == "reconnect":
                        hint = min(max(float(f.get("after_ms", 0)), 0.0), MAX_SERVER_DELAY_S * 1000) / 1000
        except (TimeoutError, OSError, WebSocketException, json.JSONDecodeError):
            pass
        c.connected = False
        if shared.stop:
            return
        if opened_at and time.monotonic() - opened_at >= STABLE_AFTER_S:
            attempt = 0
        delay = hint if hint is not None else full_jitter(attempt)
        attempt += 1
        await asyncio.sleep(delay)


def handle_message(c: Client, f: dict[str, Any], shared: Shared) -> None:
    seq, epoch = f.get("seq"), f.get("epoch")
    if f.get("snapshot"):
        c.epoch, c.last_seq = epoch, max(c.last_seq, seq)
        return
    if epoch != c.epoch:
        c.gaps += 1  # history lost: counted, never expected in this run
        c.epoch, c.last_seq = epoch, seq
        return
    if seq <= c.last_seq:
        c.duplicates += 1
        return
    if seq != c.last_seq + 1:
        c.gaps += seq - c.last_seq - 1
    c.last_seq = seq
    c.received += 1
    if c.first_seq is None:
        c.first_seq = seq
    if shared.target_seq is not None and c.caught_up_at is None and c.last_seq >= shared.target_seq:
        c.caught_up_at = time.monotonic()


async def publisher(shared: Shared, rate: float, published: list[int]) -> None:
    from realtime_project.gateway.api import apublish

    interval = 1.0 / rate
    n = 0
    while not shared.stop:
        n += 1
        pub = await apublish(CHANNEL, {"symbol": "STORM", "price": 100.0 + n, "timestamp": int(time.time() * 1000)})
        published.append(pub.seq)
        await asyncio.sleep(interval)


def percentile_time(times: list[float], fraction: float) -> float | None:
    if not times:
        return None
    ordered = sorted(times)
    index = max(0, int(len(ordered) * fraction + 0.999999) - 1)
    return ordered[index]


def peak_rate(times: list[float], window: float = 1.0) -> float:
    ordered = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(ordered):
        while t - ordered[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best / window


async def wait_for(predicate: Any, timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


async def first_accept(port: int, timeout: float = 60.0) -> float:
    """The moment the restarted gateway accepts TCP connections (its /healthz answer can
    queue behind thousands of WebSocket handshakes, so it would be measured late)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.005)
            continue
        at = time.monotonic()
        writer.close()
        return at
    raise SystemExit("the restarted gateway never accepted a connection")


async def main_async(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    from realtime_project.gateway.api import apublish
    from tests.support.servers import ServerProcess

    servers: list[ServerProcess] = []
    shared = Shared(url="")
    tasks: list[asyncio.Task[None]] = []
    try:
        server = ServerProcess(env=dict(env), server=args.server)
        servers.append(server)
        server.start()
        shared.url = server.ws_url
        # A price channel always has a latest value; without one every subscribe would
        # fetch the prices app's snapshot from the database (see docs/benchmarks/client.md).
        first = await apublish(CHANNEL, {"symbol": "STORM", "price": 100.0, "timestamp": int(time.time() * 1000)})
        published: list[int] = [first.seq]
        clients = [Client(i) for i in range(args.clients)]

        # --- baseline: N clients connect at once to a running gateway ---------------
        t0 = time.monotonic()
        tasks = [asyncio.create_task(run_client(c, shared)) for c in clients]
        ok = await wait_for(lambda: all(c.connected and c.epoch is not None for c in clients), 120)
        baseline_s = time.monotonic() - t0
        if not ok:
            ready = sum(c.connected and c.epoch is not None for c in clients)
            raise SystemExit(f"only {ready} of {len(clients)} subscribed in 120 s\n{server.read_log()[-2000:]}")
        baseline_peak = peak_rate([c.connects[0] for c in clients])

        pub_task = asyncio.create_task(publisher(shared, args.rate, published))
        await asyncio.sleep(args.warmup)

        # --- the storm --------------------------------------------------------------
        stop_at = time.monotonic()
        server.signal(signal.SIGTERM)
        await asyncio.to_thread(server.wait, 30)
        down_at = time.monotonic()
        await asyncio.sleep(args.downtime)
        restarted = ServerProcess(env=dict(env), server=args.server, port=server.port)
        servers.append(restarted)
        started = asyncio.create_task(asyncio.to_thread(restarted.start))
        back_at = await first_accept(server.port)
        shared.target_seq = published[-1]
        await wait_for(lambda: all(c.caught_up_at is not None for c in clients), args.timeout)
        settled_at = time.monotonic()
        await started
        healthy_at = time.monotonic()

        # --- stop publishing, let every client catch up, check every sequence -------
        pub_task.cancel()
        try:
            await pub_task
        except asyncio.CancelledError:
            pass
        final = published[-1]
        await wait_for(lambda: all(c.last_seq >= final for c in clients), 30)
    finally:
        shared.stop = True
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for proc in servers:
            proc.stop()

    caught = [c.caught_up_at - back_at for c in clients if c.caught_up_at is not None]
    # The restarted process binds its port before it has warmed up (lazy imports, Redis
    # pools); the first welcome is when it actually serves.
    first_welcome = min((t for c in clients for t in c.connects if t >= back_at), default=back_at)
    p99_served = percentile_time([c.caught_up_at - first_welcome for c in clients if c.caught_up_at is not None], 0.99)
    reconnects = [t for c in clients for t in c.connects[1:] if t >= stop_at]
    missing = sum(max(0, final - c.last_seq) for c in clients) + sum(c.gaps for c in clients)
    p99 = percentile_time(caught, 0.99)
    return {
        "clients": args.clients,
        "server": args.server,
        "publish_rate_per_s": args.rate,
        "published": len(published),
        "baseline_connect_all_s": round(baseline_s, 3),
        "baseline_peak_connects_per_s": round(baseline_peak, 1),
        "gateway_stop_s": round(down_at - stop_at, 3),
        "gateway_down_s": round(back_at - down_at, 3),
        "healthz_after_back_s": round(healthy_at - back_at, 3) if healthy_at >= back_at else None,
        "recovered_clients": len(caught),
        "p50_recovered_after_back_s": None if not caught else round(statistics.median(caught), 3),
        "p99_recovered_after_back_s": None if p99 is None else round(p99, 3),
        "p100_recovered_after_back_s": None if not caught else round(max(caught), 3),
        "first_welcome_after_back_s": round(first_welcome - back_at, 3),
        "p99_recovered_after_first_welcome_s": None if p99_served is None else round(p99_served, 3),
        "storm_peak_connects_per_s": round(peak_rate(reconnects), 1),
        "resubscribes_recovered_true": sum(f for c in clients for f in c.recovered_flags),
        "resubscribes_recovered_false": sum(not f for c in clients for f in c.recovered_flags),
        "lost_messages": missing,
        "skipped_by_snapshot_reset": sum(c.skipped_by_reset for c in clients),
        "duplicates_dropped_by_client": sum(c.duplicates for c in clients),
        "subscribe_errors_retried": sum(c.subscribe_errors for c in clients),
        "settle_s": round(settled_at - back_at, 3),
        "ratio_p99_recovery_to_baseline": None if p99 is None else round(p99 / baseline_s, 3),
    }


def prepare_env(args: argparse.Namespace) -> dict[str, str]:
    prefix = f"bench{secrets.token_hex(3)}"
    db = Path(tempfile.mkdtemp(prefix="storm-")) / "db.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "realtime_project.settings",
            "REDIS_URL": args.redis,
            # Production mode refuses the development key (realtime_project/security.py).
            "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
            "DATABASE_URL": f"sqlite:///{db}",
            "REALTIME_KEY_PREFIX": prefix,
            "CHANNEL_PREFIX": prefix,
            "CACHE_PREFIX": prefix,
            "EMBEDDED_SCHEDULER": "off",
            "LOG_FORMAT": "text",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=2.0, help="publications per second on the channel")
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    parser.add_argument("--downtime", type=float, default=1.0, help="seconds between exit and restart")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--redis", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    env = prepare_env(args)
    # This process publishes through the same Redis and prefix as the gateway.
    for key in ("DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL", "REALTIME_KEY_PREFIX", "CHANNEL_PREFIX"):
        os.environ[key] = env[key]
    import django

    django.setup()
    # Every phase has its own timeout; this one guards the whole run.
    result = asyncio.run(asyncio.wait_for(main_async(args, env), timeout=args.timeout + 300))
    print(json.dumps(result, indent=2))
    try:
        import redis

        r = redis.Redis.from_url(args.redis)
        for key in r.scan_iter(f"{env['REALTIME_KEY_PREFIX']}*", count=1000):
            r.delete(key)
    except Exception as exc:  # cleanup only
        print(f"redis cleanup failed: {exc}", file=sys.stderr)
    shutil.rmtree(Path(env["DATABASE_URL"].removeprefix("sqlite:///")).parent, ignore_errors=True)


if __name__ == "__main__":
    main()
