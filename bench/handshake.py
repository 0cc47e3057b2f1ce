"""A signed-in handshake while 2,000 anonymous clients connect (issue #12, finding 4).

Usage:
    .venv/bin/python -m bench.handshake [--clients 2000] [--json out.json]

What it does: a real uvicorn gateway in production mode (Redis, PostgreSQL: a throwaway
database on the local server, migrated), then, per scenario, a fresh gateway process:

- a crowd of N anonymous `websockets` clients connects at once (at most `--concurrency`
  handshakes in flight) and each subscribes to `prices:BTC`, in a separate process;
- meanwhile this process opens a signed-in connection (a Django session cookie, so the
  gateway looks the session up in the database) every 50 ms from another address and
  times TCP connect → `welcome` (user set); it goes on until the crowd is done.

Scenarios, same run and machine:
  idle          signed-in handshakes with no crowd (the baseline)
  one-address   the crowd from 127.0.0.1 with the default limits: most are refused (HTTP 429)
  many-address  the crowd spread over 20 loopback addresses (100 each, under the limit):
                every client is accepted, subscribes, and stays connected
  no-pool       as many-address, with DB_POOL=0 (a new PostgreSQL connection per database
                call: the configuration the security finding was measured on)

Prints one JSON object; the figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PROBE_EVERY_S = 0.05


def _psql(sql: str) -> None:
    subprocess.run(["psql", f"{PG}/postgres", "-qAtc", sql], check=True, capture_output=True)


def prepare(db: str) -> tuple[dict[str, str], str]:
    """Create and migrate the database; return the gateway's env and a session cookie."""
    _psql(f'CREATE DATABASE "{db}"')
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "realtime_project.settings",
            "DATABASE_URL": f"{PG}/{db}",
            "REDIS_URL": REDIS_URL,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "SECURE_SSL_REDIRECT": "0",
            "REALTIME_KEY_PREFIX": db,
            "CHANNEL_PREFIX": db,
            "CACHE_PREFIX": db,
            "EMBEDDED_SCHEDULER": "off",
            "EMBEDDED_FEEDS": "off",
            "WALLETS_DEV_CHAIN": "0",
            "LOG_FORMAT": "text",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    script = (
        "from django.contrib.auth import get_user_model\n"
        "from django.test import Client\n"
        "from django.conf import settings\n"
        "u = get_user_model().objects.create_user(username='bench', password='pw-bench-123')\n"
        "c = Client(); c.force_login(u)\n"
        "print(c.cookies[settings.SESSION_COOKIE_NAME].value)\n"
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return env, out.stdout.strip().splitlines()[-1]


# --- the crowd (a subprocess: its event loop is not the prober's) ----------------------


async def crowd(url: str, n: int, sources: list[str], concurrency: int, hold: float) -> dict[str, Any]:
    import websockets
    from websockets.exceptions import InvalidStatus

    gate = asyncio.Semaphore(concurrency)
    accepted = refused = failed = subscribed = 0
    sockets: list[Any] = []

    async def one(i: int) -> None:
        nonlocal accepted, refused, failed, subscribed
        async with gate:
            try:
                ws = await websockets.connect(url, local_addr=(sources[i % len(sources)], 0), open_timeout=60)
            except InvalidStatus:
                refused += 1
                return
            except Exception:
                failed += 1
                return
            try:
                await asyncio.wait_for(ws.recv(), 60)  # welcome
                accepted += 1
                await ws.send(json.dumps({"type": "subscribe", "id": 1, "channel": "prices:BTC"}))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 60))
                subscribed += reply.get("type") == "subscribed"
                sockets.append(ws)
            except Exception:
                failed += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - started
    await asyncio.sleep(hold)
    for ws in sockets:
        ws.transport.abort()
    return {
        "accepted": accepted,
        "refused": refused,
        "failed": failed,
        "subscribed": subscribed,
        "crowd_s": round(elapsed, 2),
    }


# --- the signed-in prober -----------------------------------------------------------


async def signed_in_handshake(url: str, cookie: str) -> float:
    import websockets

    started = time.perf_counter()
    async with websockets.connect(
        url, additional_headers={"Cookie": f"sessionid={cookie}"}, local_addr=("127.0.0.250", 0), open_timeout=60
    ) as ws:
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 60))
        took = time.perf_counter() - started
    assert welcome["type"] == "welcome" and welcome["user"] is not None, welcome
    return took


async def probe_while(url: str, cookie: str, crowd_proc: subprocess.Popen[str] | None, count: int) -> list[float]:
    samples: list[float] = []
    while True:
        samples.append(await signed_in_handshake(url, cookie))
        if crowd_proc is None and len(samples) >= count:
            return samples
        if crowd_proc is not None and crowd_proc.poll() is not None:
            return samples
        await asyncio.sleep(PROBE_EVERY_S)


def summary(samples: list[float]) -> dict[str, Any]:
    ms = sorted(s * 1000 for s in samples)
    return {
        "signed_in_handshakes": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1),
        "max_ms": round(ms[-1], 1),
    }


def run_scenario(
    name: str,
    env: dict[str, str],
    cookie: str,
    args: argparse.Namespace,
    sources: list[str] | None,
    extra: dict[str, str],
) -> dict[str, Any]:
    from tests.support.servers import ServerProcess

    server = ServerProcess(env={**env, **extra}, server="uvicorn")
    server.start()
    try:
        asyncio.run(signed_in_handshake(server.ws_url, cookie))  # warm the process up once
        crowd_proc = None
        if sources is not None:
            command = [sys.executable, "-m", "bench.handshake", "--role", "crowd", "--url", server.ws_url]
            command += ["--clients", str(args.clients), "--concurrency", str(args.concurrency)]
            crowd_proc = subprocess.Popen(
                [*command, "--sources", ",".join(sources)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
        samples = asyncio.run(probe_while(server.ws_url, cookie, crowd_proc, count=40))
        result: dict[str, Any] = {"scenario": name, **summary(samples)}
        if crowd_proc is not None:
            out, _ = crowd_proc.communicate(timeout=120)
            result.update(json.loads(out.strip().splitlines()[-1]))
        log = server.read_log()
        result["server_log_errors"] = sum("ERROR" in line or "Traceback" in line for line in log.splitlines())
        print(json.dumps(result), flush=True)
        return result
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=500, help="crowd handshakes in flight at once")
    parser.add_argument("--json", help="also write the result here")
    parser.add_argument("--role", default="main", choices=["main", "crowd"])
    parser.add_argument("--url")
    parser.add_argument("--sources", default="127.0.0.1")
    args = parser.parse_args()
    if args.role == "crowd":
        sources = args.sources.split(",")
        print(json.dumps(asyncio.run(crowd(args.url, args.clients, sources, args.concurrency, hold=1.0))))
        return

    db = f"bench_handshake_{secrets.token_hex(3)}"
    env, cookie = prepare(db)
    many = [f"127.0.1.{i}" for i in range(1, 21)]
    try:
        results = [
            run_scenario("idle", env, cookie, args, None, {}),
            run_scenario("one-address", env, cookie, args, ["127.0.0.1"], {}),
            run_scenario("many-address", env, cookie, args, many, {}),
            run_scenario("no-pool", env, cookie, args, many, {"DB_POOL": "0"}),
        ]
    finally:
        _psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        try:
            import redis

            r = redis.Redis.from_url(REDIS_URL)
            for key in r.scan_iter(f"{db}*", count=1000):
                r.delete(key)
        except Exception as exc:  # cleanup only
            print(f"redis cleanup failed: {exc}", file=sys.stderr)
    out = {"clients": args.clients, "concurrency": args.concurrency, "results": results}
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
