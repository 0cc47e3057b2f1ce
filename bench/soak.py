"""Soak with chaos (issue #15): the supervised cluster under steady load, a random process
killed with `kill -9` every 30 s.

Usage:
    .venv/bin/python -m bench.soak [--minutes 10] [--clients 1000] [--symbols 100]
        [--rate 10] [--kill-every 30] [--json var/soak.json]

What it does:
1. Starts a Redis of its own (redis-server on a free port) and creates a fresh PostgreSQL
   database (`realtime_soak_<random>` on the server of TEST_DATABASE_URL), migrates it,
   installs the schedule, activates `--symbols` symbols on the simulated market and creates
   `--signed-in` users.
2. Starts the production topology on one machine exactly as `make cluster` does
   (`realtime_project/cluster.py`: supervisord running deploy/supervisord.conf, two HAProxy
   instances on one address in front of two gateways, two feed processes on one lease, the workers, two beats), on free
   ports, with the simulated market as its only source.
3. Connects `--clients` browser-like clients through the balancer (bench/chaos_clients.py:
   answer pings, honour `reconnect`, resubscribe with `since`): each subscribes to
   `--subs` random symbols and the market overview; the first `--signed-in` also to their
   notifications. The clients run in `--client-procs` processes (bench/soak_clients.py,
   each sampling its clients and reporting on stdout). This process writes notifications
   at `--rate` per second (the product's `notifications.api.send`, as a worker would),
   round robin over the signed-in users.
4. Every `--kill-every` seconds it `kill -9`s the process group of one program chosen at
   random (seeded) among every program of the cluster (or of `--only`), the balancers
   included.
5. Measures:
   - **availability**: the fraction of client-seconds (sampled every 0.5 s) with a live
     socket subscribed to all its channels whose newest data is no older than 2 s;
   - **lost / duplicated** notifications (each id must reach its user's client exactly
     once), seq gaps and repeats on every channel;
   - delivery latency (p50/p99/max): notifications from their send time, prices from the
     aggregate's timestamp;
   - per kill: when the program was running again, and the **recovery time** (until
     99.9 % of the clients were fresh again); the worst of them.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


#: Data older than this makes a client-second unavailable.
MAX_AGE = 2.0
SAMPLE_EVERY = 0.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="soak-redis-")
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is required (Debian package redis-server)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--maxclients", "10000"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.url = f"redis://127.0.0.1:{self.port}/0"
        import redis

        for _ in range(100):
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.2).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise SystemExit("redis-server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def fresh_database(base_url: str) -> tuple[str, str]:
    """A new empty database on `base_url`'s server: (its URL, its name)."""
    import psycopg

    name = f"realtime_soak_{secrets.token_hex(4)}"
    parts = urlsplit(base_url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}")), name


def drop_database(base_url: str, name: str) -> None:
    import psycopg

    admin = urlunsplit(urlsplit(base_url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


SEED = """
from django.contrib.auth import get_user_model
from prices.models import Source, Symbol, SymbolMapping
n, users = {symbols}, {users}
source = Source.objects.get(kind="simulated")
Source.objects.exclude(pk=source.pk).update(enabled=False)
Source.objects.filter(pk=source.pk).update(enabled=True)
have = list(Symbol.objects.filter(active=True).values_list("symbol", flat=True))[:n]
extra = [Symbol(symbol=f"S{{i}}", name=f"Soak {{i}}") for i in range(n - len(have))]
Symbol.objects.bulk_create(extra)
Symbol.objects.exclude(symbol__in=have + [s.symbol for s in extra]).update(active=False)
for symbol in Symbol.objects.filter(active=True):
    SymbolMapping.objects.get_or_create(symbol=symbol, source=source, defaults={{"external_id": symbol.symbol}})
User = get_user_model()
User.objects.bulk_create([User(username=f"soak-{{i}}") for i in range(users)], ignore_conflicts=True)
print(",".join(Symbol.objects.filter(active=True).values_list("symbol", flat=True)))
"""


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def reconnect_phases(rows: list[tuple[float, float, float, float]], lo: float, hi: float) -> dict[str, Any]:
    """The reconnections of sockets lost in [lo, hi): how many, and where their time went
    (ms, mean and p99): the backoff before connecting, the handshake through the balancer,
    the resubscription until every channel is subscribed again, and the total."""
    rows = [r for r in rows if lo <= r[0] < hi]
    out: dict[str, Any] = {"count": len(rows)}
    for name, values in (
        ("backoff", [b - a for a, b, _, _ in rows]),
        ("handshake", [o - b for _, b, o, _ in rows]),
        ("subscribe", [d - o for _, _, o, d in rows]),
        ("total", [d - a for a, _, _, d in rows]),
    ):
        if values:
            out[f"{name}_ms"] = {
                "mean": round(1000 * statistics.fmean(values)),
                "p99": round(1000 * (percentile(values, 0.99) or 0)),
            }
    return out


class ClientProcess:
    """One `bench.soak_clients` process and what it has reported so far."""

    def __init__(self, proc: asyncio.subprocess.Process, clients: int, out: Path) -> None:
        self.proc, self.clients, self.out = proc, clients, out
        self.live = False
        self.done = False
        self.samples: list[tuple[float, int]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode().strip()
            if line.startswith("S "):
                _, t, n = line.split()
                self.samples.append((float(t), int(n)))
            elif line.startswith("N "):
                RECEIVED.add(line[2:])
            elif line == "live":
                self.live = True
            elif line == "done":
                self.done = True

    def fresh(self, now: float) -> int | None:
        """Fresh clients at the latest sample, if it is recent."""
        if self.samples and now - self.samples[-1][0] <= 2 * SAMPLE_EVERY + 0.5:
            return self.samples[-1][1]
        return None

    async def stop(self, timeout: float = 120) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        await asyncio.wait_for(self.proc.wait(), timeout)
        await self.reader
        return json.loads(self.out.read_text()) if self.done else {"clients": [], "summary": {}}


#: Notification ids some client process has reported receiving.
RECEIVED: set[str] = set()


async def soak(args: argparse.Namespace, env: dict[str, str], symbols: list[str], out: dict[str, Any]) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connections

    from notifications import api as notifications_api
    from realtime_project.cluster import Cluster, ClusterSpec

    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    port = free_port()
    env["REALTIME_ALLOWED_ORIGINS"] = f"http://127.0.0.1:{port}"
    spec = ClusterSpec(
        port=port, gateway_ports=(free_port(), free_port()), run_dir=work / "run", log_dir=work / "log", env=env
    )
    cluster = Cluster(spec)
    print(f"soak: starting the cluster on :{port} (logs in {spec.log_dir})", file=sys.stderr)
    await asyncio.to_thread(cluster.start, 180)
    users = await asyncio.to_thread(lambda: list(get_user_model().objects.filter(username__startswith="soak-")))
    await asyncio.to_thread(connections.close_all)
    users = users[: args.signed_in]
    rows: list[dict[str, Any]] = []
    for i in range(args.clients):
        channels = [f"prices:{s}" for s in rng.sample(symbols, args.subs)] + ["market:overview"]
        user = users[i].pk if i < len(users) else None
        rows.append({"index": i, "channels": [*channels, "notifications"] if user else channels, "user": user})
    owner = {row["index"]: row["user"] for row in rows if row["user"] is not None}
    procs: list[ClientProcess] = []
    for k in range(args.client_procs):
        share = rows[k :: args.client_procs]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.soak_clients", cwd=ROOT, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        child = ClientProcess(proc, len(share), work / f"clients-{k}.json")
        line = {"url": cluster.ws_url, "clients": share, "max_age": MAX_AGE, "sample_every": SAMPLE_EVERY}
        assert proc.stdin is not None
        proc.stdin.write((json.dumps({**line, "out": str(child.out)}) + "\n").encode())
        await proc.stdin.drain()
        procs.append(child)
    sent: dict[str, int] = {}
    send_latency: list[float] = []
    kills: list[dict[str, Any]] = []
    kill_times: list[float] = []
    tasks: list[asyncio.Task[Any]] = []
    running = True

    async def publisher() -> None:
        n = 0
        next_at = time.monotonic()
        while running:
            user = users[n % len(users)]
            spec_ = {"type": "security_warning", "title": f"soak {n}", "priority": "high",
                     "data": {"sent_ms": time.time() * 1000}, "dedupe_key": f"soak-{n}"}  # fmt: skip
            started = time.monotonic()
            try:
                result = await asyncio.to_thread(notifications_api.send, user.pk, spec_)
                sent[f"n:{result.notification.pk}"] = user.pk
            except Exception as exc:  # the database is fine; report anything else
                print(f"soak: send failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            send_latency.append(time.monotonic() - started)
            n += 1
            next_at += 1 / args.rate
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    def fresh_share(now: float) -> float:
        counts = [p.fresh(now) for p in procs]
        return 0.0 if None in counts else sum(c or 0 for c in counts) / args.clients

    results: list[dict[str, Any]] = []
    try:
        t0 = time.monotonic()
        deadline = t0 + 180
        while not all(p.live for p in procs):
            if time.monotonic() > deadline or any(p.proc.returncode is not None for p in procs):
                raise SystemExit(f"only {sum(p.live for p in procs)} of {len(procs)} client processes subscribed")
            await asyncio.sleep(0.2)
        out["connect_all_s"] = round(time.monotonic() - t0, 1)
        print(f"soak: {args.clients} clients in {len(procs)} processes subscribed in {out['connect_all_s']} s; "
              "warming up", file=sys.stderr)  # fmt: skip
        await asyncio.sleep(args.warmup)
        tasks.append(asyncio.create_task(publisher()))
        started = time.monotonic()
        end = started + args.minutes * 60
        programs = sorted(p for p in cluster.status() if not args.only or p in args.only)
        next_kill = started + args.kill_every
        while time.monotonic() < end:
            await asyncio.sleep(max(0.0, min(next_kill, end) - time.monotonic()))
            if time.monotonic() >= end:
                break
            program = rng.choice(programs)
            old = cluster.pid(program)
            killed_at = time.monotonic()
            try:
                os.killpg(old, signal.SIGKILL)
            except ProcessLookupError:
                pass
            record: dict[str, Any] = {"at_s": round(killed_at - started, 1), "program": program}
            kills.append(record)
            kill_times.append(killed_at)
            try:
                await asyncio.to_thread(
                    cluster.wait_running, [program], exclude_pids=[old], timeout=args.kill_every - 2
                )
                record["running_after_s"] = round(time.monotonic() - killed_at, 2)
            except Exception as exc:
                record["running_after_s"] = None
                record["error"] = str(exc).splitlines()[0]
            # Recovery: 99.9 % of the clients fresh again (checked from 0.5 s after the
            # kill, so a client's last pre-kill data does not count as recovery).
            await asyncio.sleep(0.5)
            while time.monotonic() < next_kill + args.kill_every - 1 and time.monotonic() < end:
                if fresh_share(time.monotonic()) >= 0.999:
                    break
                await asyncio.sleep(0.1)
            record["recovered_after_s"] = round(time.monotonic() - killed_at, 2)
            print(f"soak: {record}", file=sys.stderr)
            next_kill += args.kill_every
        running = False
        measured_until = time.monotonic()
        # Let every notification arrive (the outbox resends what a kill interrupted).
        drain_until = time.monotonic() + 30
        while time.monotonic() < drain_until and not all(nid in RECEIVED for nid in sent):
            await asyncio.sleep(0.2)
        out["duration_s"] = round(measured_until - started, 1)
    finally:
        running = False
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        results = list(await asyncio.gather(*(p.stop() for p in procs), return_exceptions=False))
        out["cluster_stop_code"] = await asyncio.to_thread(cluster.stop, 120)
        out["logs"] = str(spec.log_dir)

    clients = [c for r in results for c in r["clients"]]
    received = {nid: sum(c["notifications"].get(nid, 0) for c in clients) for nid in sent}
    stray = 0
    for c in clients:
        if c["index"] in owner:
            stray += sum(1 for nid in c["notifications"] if sent.get(nid) not in (None, owner[c["index"]]))
    # Each sample stands for the time until the next one of its process (a process's
    # sampler runs late when its loop is busy, typically right after a kill: counting every
    # sample as SAMPLE_EVERY would under-weight exactly the bad moments).
    weighted: list[tuple[float, int, int, float]] = []  # (time, clients, fresh, weight)
    for p in procs:
        inside = [(t, n) for t, n in p.samples if started <= t <= measured_until]
        for (t, n), (t2, _) in itertools.pairwise(inside):
            weighted.append((t, p.clients, n, t2 - t))
    total_cs = sum(k * w for _, k, _, w in weighted)
    available = sum(n * w for _, _, n, w in weighted) / max(1e-9, total_cs)
    # Where the unavailable client-seconds went: before the first kill, and in the window
    # from each kill to the next, split into "no subscribed socket" (the clients' outages)
    # and "subscribed but nothing newer than 2 s" (the rest).
    bounds = [started, *kill_times, measured_until]
    outages = [(a, b) for c in clients for a, b in c["outages"]]
    reconnect_rows: list[tuple[float, float, float, float]] = [tuple(r) for c in clients for r in c["reconnects"]]
    windows: list[dict[str, Any]] = []
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        lost = sum((k - n) * w for t, k, n, w in weighted if lo <= t < hi)
        down = 0.0
        for a, b in outages:
            b = b if b is not None else hi
            down += max(0.0, min(b, hi) - max(a, lo))
        label = "before the first kill" if i == 0 else kills[i - 1]["program"]
        windows.append({"window": label, "unavailable_client_s": round(lost), "disconnected_client_s": round(down)})
        if i > 0:
            kills[i - 1]["unavailable_client_s"] = round(lost)
            kills[i - 1]["disconnected_client_s"] = round(down)
            kills[i - 1]["reconnects"] = reconnect_phases(reconnect_rows, lo, hi)
    out["unavailable_client_s"] = round(sum(w["unavailable_client_s"] for w in windows))
    out["unavailable_by_window"] = windows
    notif_lat = [lat for c in clients for lat in c["note_latencies"]]
    price_lat = [lat for c in clients for lat in c["latencies"]]
    recoveries = [k["recovered_after_s"] for k in kills if k.get("recovered_after_s") is not None]
    stream: dict[str, Any] = {"clients": len(clients)}
    for key in ("live", "messages", "gaps", "repeats", "resets", "connects", "handovers", "handover_duplicates"):
        stream[key] = sum(int(r["summary"].get(key, 0)) for r in results)
    stream["errors"] = dict(sum((Counter(r["summary"].get("errors", {})) for r in results), Counter()))
    out.update(
        clients=len(clients),
        client_processes=len(procs),
        symbols=len(symbols),
        notifications_sent=len(sent),
        lost=sum(1 for v in received.values() if v == 0),
        duplicated=sum(1 for v in received.values() if v > 1),
        delivered_to_wrong_user=stray,
        availability=round(available, 5),
        samples=len(weighted),
        notification_latency_ms={
            "p50": percentile(notif_lat, 0.5), "p99": percentile(notif_lat, 0.99), "max": max(notif_lat, default=None)
        },
        price_latency_ms={
            "p50": percentile(price_lat, 0.5), "p99": percentile(price_lat, 0.99), "max": max(price_lat, default=None)
        },
        send_p99_ms=round((percentile(send_latency, 0.99) or 0) * 1000, 1),
        kills=kills,
        worst_recovery_s=max(recoveries, default=None),
        median_recovery_s=statistics.median(recoveries) if recoveries else None,
        stream=stream,
        bench_cpu_s=round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 1),
        client_processes_cpu_s=round(sum(r.get("cpu_s", 0.0) for r in results), 1),
    )  # fmt: skip
    for key in ("notification_latency_ms", "price_latency_ms"):
        out[key] = {k: (round(v, 1) if v is not None else None) for k, v in out[key].items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--subs", type=int, default=3, help="price channels per client (plus the overview)")
    parser.add_argument("--signed-in", type=int, default=100, help="clients that also follow their notifications")
    parser.add_argument("--rate", type=float, default=10.0, help="notifications per second")
    parser.add_argument("--kill-every", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument(
        "--only", type=lambda v: v.split(","), default=None, help="kill only these programs (comma-separated)"
    )
    parser.add_argument(
        "--client-procs", type=int, default=4, help="processes the clients are spread over (bench/soak_clients.py)"
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--database", default=os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/realtime")
    )
    args = parser.parse_args()
    redis_server = PrivateRedis()
    db_url, db_name = fresh_database(args.database)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "realtime_project.settings",
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_server.url,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "WARNING",
        "WALLETS_DEV_CHAIN": "0",
        "PRICES_SIMULATED": "1",
        "PRICES_LIVE_SOURCES": "0",
        "PRICES_MIN_SOURCES": "1",
        "PYTHONUNBUFFERED": "1",
    }
    out: dict[str, Any] = {"command": " ".join(["python -m bench.soak", *sys.argv[1:]])}
    try:
        manage(env, "migrate", "--noinput", "-v0")
        manage(env, "setup_schedule")
        seeded = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", SEED.format(symbols=args.symbols, users=args.signed_in)],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        symbols = seeded.stdout.strip().splitlines()[-1].split(",")
        os.environ.update({k: v for k, v in env.items() if k != "REALTIME_ALLOWED_ORIGINS"})
        import django

        django.setup()
        asyncio.run(soak(args, env, symbols, out))
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:
            pass
        drop_database(args.database, db_name)
        redis_server.stop()
    text = json.dumps(out, indent=2)
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)


if __name__ == "__main__":
    main()
