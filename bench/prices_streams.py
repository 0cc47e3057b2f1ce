"""Freshness benchmark (issue #11): venue send → browser socket, streams vs today's REST polls.

In ONE run, against the same fake venues (`bench/prices_venues.py`: Binance, Coinbase,
Kraken and OKX streams plus their REST APIs, N symbols on every venue, moves at random
with bursts of all symbols at once, each venue message stamped with its send time):

1. **streams**: `manage.py feeds` (the product's feed process) streams the four venues and
   publishes coalesced batches through the product's publication path to a real gateway
   (uvicorn, Redis); 1,000 clients (`bench/loadgen/loadgen.c`) subscribe to 50 symbols
   each. Latency per delivered update = client receive time - the update's `quoted_at`
   (the send time of the newest venue message in that aggregate). Feed-process CPU per
   venue message = its CPU time / the messages its streams counted, over the window.
   The feed's own share (venue send → publication handed to Redis) comes from its health
   (`publish_lag_ms`, a histogram: figures are bucket upper edges).
   Loss: an auditor client subscribed to every symbol checks each channel's `seq` has no
   gap, and that every market move beyond the deviation threshold that then stood for
   `SETTLE` (1 s) is what the auditor shows 1 s later (`audit.moves.lost`; moves superseded
   sooner may be coalesced away and are not checked).
2. **rest**: the same gateway and clients, prices from today's REST path instead: the
   tick (`prices.services.tick.prices_tick`, what the beat task runs) every TICK_INTERVAL
   (2 s) polls the venues' REST APIs; `quoted_at` is then the newest venue update time
   among the polled quotes (Kraken's REST ticker has none and does not count).

Usage: .venv/bin/python -m bench.prices_streams [--symbols 500] [--clients 1000] [--subs 50]
           [--seconds 60] [--mean-interval 4] [--burst-every 10] [--json out.json]
           [--only streams,rest] [--profile feed.speedscope.json]
Run it alone on the machine (no other load). Needs Redis on 127.0.0.1:6379 and cc.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fanout import REDIS_URL, ensure_loadgen, proc_stats  # noqa: E402
from tests.support.servers import ServerProcess  # noqa: E402

DB = ROOT / "var" / "bench-streams.sqlite3"


def env_for(prefix: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        REDIS_URL=REDIS_URL,
        DATABASE_URL=f"sqlite:///{DB}",
        REALTIME_KEY_PREFIX=prefix,
        CHANNEL_PREFIX=prefix,
        CACHE_PREFIX=prefix,
        EMBEDDED_SCHEDULER="off",
        EMBEDDED_FEEDS="off",
        WALLETS_DEV_CHAIN="0",
        LOG_LEVEL="WARNING",
        LOG_FORMAT="text",
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="realtime_project.settings",
        PRICES_LIVE_SOURCES="1",
        PRICES_SIMULATED="0",
        # Production mode (REDIS_URL) refuses to start without a secret key; plain http here.
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        SECURE_SSL_REDIRECT="0",
    )
    env.update(extra)
    return env


def seed(env: dict[str, str], n: int, rest: dict[str, str]) -> None:
    """The bench's symbols S0…S{n-1} on the four venues (the seeded majors deactivated)."""
    DB.parent.mkdir(exist_ok=True)
    DB.unlink(missing_ok=True)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    script = f"""
from prices.models import Source, Symbol, SymbolMapping
from bench.prices_venues import rest_ids, venue_ids
Symbol.objects.update(active=False)
Source.objects.filter(kind__in=["coingecko", "simulated"]).update(enabled=False)
rest = {json.dumps(rest)}
sources = {{}}
for kind in ("binance", "coinbase", "kraken", "okx"):
    Source.objects.filter(kind=kind).update(base_url=rest[kind], poll_interval=2.0, enabled=True)
    sources[kind] = Source.objects.get(kind=kind)
symbols = Symbol.objects.bulk_create([Symbol(symbol=f"S{{i}}", name=f"Bench {{i}}") for i in range({n})])
rows = []
for sym in symbols:
    rid, vid = rest_ids(sym.symbol), venue_ids(sym.symbol)
    for kind, source in sources.items():
        stream_id = vid[kind] if vid[kind] != rid[kind] else ""
        rows.append(SymbolMapping(symbol=sym, source=source, external_id=rid[kind], stream_id=stream_id))
SymbolMapping.objects.bulk_create(rows)
"""
    subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, check=True)


def die_with_parent() -> None:
    """In a child: SIGTERM when the benchmark dies (a timeout's kill must not leave a feed
    process streaming on the machine)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def child_pid(pid: int) -> int:
    """The process py-spy started (the feed), for its own CPU time."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0])


def readyz(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=10) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())  # type: ignore[no-any-return]


def feed_health(url: str) -> dict[str, Any] | None:
    body = readyz(url)
    if os.environ.get("BENCH_DEBUG"):
        print(json.dumps(body.get("apps", {}).get("feeds"))[:2000], file=sys.stderr)
    feeds = body["apps"].get("feeds", {}).get("feeds", {})
    return feeds.get("prices", {}).get("health")


def wait(check: Any, what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise RuntimeError(f"{what}: not reached in {timeout:.0f} s (last: {value!r})")


class Auditor:
    """Clients subscribed to every symbol (100 per connection, the gateway's limit, paced under
    its frame rate limit): count publications and `seq` gaps per channel."""

    PER_CONNECTION = 100
    #: Subscribe frames per second (the gateway allows 20/s per connection).
    PACE = 15

    def __init__(self, url: str, n: int) -> None:
        self.url, self.n = url, n
        self.seq: dict[str, int] = {}
        #: Per symbol, every published price with its receive time (epoch s), for the loss check.
        self.prices: dict[str, list[tuple[float, float]]] = {}
        self.gaps = 0
        self.received = 0
        self.subscribed = 0
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # reported by start()/finish()
            self.error = exc
            self.ready.set()

    async def _run(self) -> None:
        channels = [f"prices:S{i}" for i in range(self.n)]
        parts = [channels[i : i + self.PER_CONNECTION] for i in range(0, len(channels), self.PER_CONNECTION)]
        await asyncio.gather(*(self._client(part) for part in parts))

    async def _client(self, channels: list[str]) -> None:
        import websockets

        async with websockets.connect(self.url, max_size=None) as ws:
            json.loads(await ws.recv())

            async def subscribe() -> None:
                for i, channel in enumerate(channels):
                    await ws.send(json.dumps({"type": "subscribe", "id": i, "channel": channel}))
                    await asyncio.sleep(1 / self.PACE)

            sender = asyncio.create_task(subscribe())
            while not self.stop.is_set():
                try:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                except TimeoutError:
                    continue
                kind = frame.get("type")
                if kind == "ping":
                    await ws.send(json.dumps({"type": "pong", "id": frame["id"]}))
                elif kind == "subscribed":
                    self.subscribed += 1
                    if self.subscribed == self.n:
                        self.ready.set()
                elif kind == "error":
                    raise RuntimeError(f"auditor: {frame}")
                elif kind == "message" and not frame.get("snapshot") and self.ready.is_set():
                    channel, seq = frame["channel"], frame["seq"]
                    last = self.seq.get(channel)
                    if last is not None and seq > last + 1:
                        self.gaps += seq - last - 1
                    self.seq[channel] = max(seq, last or 0)
                    self.received += 1
                    self._price(frame["data"])
                elif kind == "message":
                    self.seq[frame["channel"]] = frame["seq"]
                    self._price(frame["data"])
            await sender

    def _price(self, data: dict[str, Any]) -> None:
        self.prices.setdefault(str(data["symbol"]), []).append((time.time(), float(data["price"])))

    def price_at(self, symbol: str, at: float) -> float | None:
        """The symbol's price as this client knew it at `at` (epoch s)."""
        known = None
        for received, price in self.prices.get(symbol, ()):
            if received > at:
                break
            known = price
        return known

    def start(self) -> Auditor:
        self.thread.start()
        if not self.ready.wait(120) or self.error is not None:
            raise RuntimeError(f"the auditor could not subscribe: {self.error!r}")
        return self

    def finish(self) -> dict[str, Any]:
        self.stop.set()
        self.thread.join(10)
        return {"publications": self.received, "seq_gaps": self.gaps}


#: A move is checked when the symbol then stays put this long (seconds): by then the
#: auditor's price must be within the deviation threshold of it. Moves followed sooner by
#: another move of the same symbol may be coalesced away (allowed) and are not checked.
SETTLE = 1.0


def lost_moves(
    moves: list[tuple[str, float, float]], auditor: Auditor, *, start: float, end: float, deviation_bps: float
) -> dict[str, Any]:
    """Moves of the venues' market (every venue moved together) beyond the deviation
    threshold whose price the auditor did not show `SETTLE` seconds later."""
    by_symbol: dict[str, list[tuple[float, float]]] = {}
    for symbol, price, at in moves:
        by_symbol.setdefault(symbol, []).append((at, price))
    threshold = deviation_bps / 10_000
    checked = lost = superseded = below = 0
    examples: list[dict[str, Any]] = []
    for symbol, series in by_symbol.items():
        series.sort()
        for i in range(1, len(series)):
            at, price = series[i]
            if not start <= at <= end - SETTLE:
                continue
            if abs(price / series[i - 1][1] - 1) < threshold:
                below += 1
                continue
            if i + 1 < len(series) and series[i + 1][0] - at < SETTLE:
                superseded += 1
                continue
            checked += 1
            shown = auditor.price_at(symbol, at + SETTLE)
            if shown is None or abs(shown / price - 1) >= threshold:
                lost += 1
                if len(examples) < 5:
                    examples.append({"symbol": symbol, "price": price, "at": round(at, 3), "shown": shown})
    return {
        "checked": checked,
        "lost": lost,
        "superseded_within_1s": superseded,
        "below_threshold": below,
        "examples": examples,
    }


def measure(gw: ServerProcess, args: argparse.Namespace, producer_pid: int, venues: Any) -> dict[str, Any]:
    cfg = {
        "url": gw.ws_url,
        "n": args.clients,
        "mode": "ours",
        "channel": "prices:S",
        "channels": args.symbols,
        "subs": args.subs,
        "time_key": "quoted_at",
        "loss": False,
        "expect": 4000,  # latency samples kept per connection
        "concurrency": 200,
    }
    lg = subprocess.Popen(
        [*ensure_loadgen("c"), json.dumps(cfg)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert lg.stdout is not None and lg.stdin is not None
    ready = json.loads(lg.stdout.readline())
    auditor = Auditor(gw.ws_url, args.symbols).start()
    health0 = feed_health(gw.http_url) or {}
    cpu0, _ = proc_stats(producer_pid)
    gw_cpu0, _ = proc_stats(gw.proc.pid)  # type: ignore[union-attr]
    t0 = time.monotonic()
    wall0 = time.time()
    time.sleep(args.seconds)
    wall1 = time.time()
    cpu1, rss = proc_stats(producer_pid)
    gw_cpu1, gw_rss = proc_stats(gw.proc.pid)  # type: ignore[union-attr]
    elapsed = time.monotonic() - t0
    health1 = feed_health(gw.http_url) or {}
    lg.stdin.write("stop\n")
    lg.stdin.flush()
    stats = json.loads(lg.stdout.readline())
    lg.wait(10)
    time.sleep(SETTLE)  # the auditor sees the window's last moves settle
    audit = auditor.finish()
    venues.stdin.write(f"moves {wall0 - 60:.3f} {wall1:.3f}\n")
    venues.stdin.flush()
    moves = [tuple(m) for m in json.loads(venues.stdout.readline())]
    audit["moves"] = lost_moves(moves, auditor, start=wall0, end=wall1, deviation_bps=args.deviation_bps)

    def messages(h: dict[str, Any]) -> int:
        return sum(int(v.get("messages", 0)) for v in (h.get("venues") or {}).values())

    venue_messages = messages(health1) - messages(health0)
    lag0 = (health0.get("publish_lag_ms") or {}).get("counts")
    lag1 = (health1.get("publish_lag_ms") or {}).get("counts")
    feed_lag = None
    if lag0 and lag1:
        from prices.lag import LagHistogram

        window = [b - a for a, b in zip(lag0, lag1, strict=True)]
        feed_lag = {
            "n": sum(window),
            "p50_le_ms": LagHistogram.quantile(window, 0.5),
            "p99_le_ms": LagHistogram.quantile(window, 0.99),
        }
    return {
        "connect_s": ready.get("connect_s"),
        "seconds": round(elapsed, 1),
        "deliveries": stats["received"],
        "deliveries_per_s": round(stats["received"] / elapsed),
        "p50_ms": stats["p50_ms"],
        "p99_ms": stats["p99_ms"],
        "max_ms": stats["max_ms"],
        "unexpected": stats["unexpected"],
        "closed_early": stats["closed_early"],
        "audit": audit,
        "producer_cpu_s": round(cpu1 - cpu0, 2),
        "producer_cpu_share": round((cpu1 - cpu0) / elapsed, 3),
        "producer_rss_mb": round(rss / 2**20, 1),
        "gateway_cpu_share": round((gw_cpu1 - gw_cpu0) / elapsed, 3),
        "gateway_rss_mb": round(gw_rss / 2**20, 1),
        "venue_messages": venue_messages,
        "venue_messages_per_s": round(venue_messages / elapsed) if venue_messages else None,
        "cpu_us_per_venue_message": round((cpu1 - cpu0) / venue_messages * 1e6, 1) if venue_messages else None,
        "publications": (health1.get("publications", 0) - health0.get("publications", 0)) if health1 else None,
        # The feed's share: venue send -> publication handed to the gateway (bucket edges).
        "feed_publish_lag": feed_lag,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--subs", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--mean-interval", type=float, default=4.0)
    parser.add_argument("--burst-every", type=float, default=10.0)
    parser.add_argument("--only", default="streams,rest")
    parser.add_argument("--deviation-bps", type=float, default=1.0, help="PRICES DEVIATION_BPS (the loss check's)")
    parser.add_argument("--json")
    parser.add_argument(
        "--profile", metavar="OUT", help="record the feed process with py-spy (--nonblocking) into OUT (speedscope)"
    )
    args = parser.parse_args()
    prefix = f"bps{secrets.token_hex(3)}"
    env = env_for(prefix)
    venues = subprocess.Popen(
        [sys.executable, "-m", "bench.prices_venues", str(args.symbols), "--mean-interval", str(args.mean_interval),
         "--burst-every", str(args.burst_every)],
        cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent,
    )  # fmt: skip
    assert venues.stdout is not None and venues.stdin is not None
    urls = json.loads(venues.stdout.readline())
    results: dict[str, Any] = {"conditions": vars(args)}
    gw: ServerProcess | None = None
    producer: subprocess.Popen[bytes] | None = None
    try:
        seed(env, args.symbols, urls["rest"])
        # 50 subscribe frames at once exceed the default burst (40 frames) of the gateway's
        # per-connection rate limit: raised for the bench (a condition in docs/benchmarks.md).
        gw = ServerProcess(env={**env, "REALTIME_RATE_LIMIT_BURST": str(max(40, args.subs + 10))}, server="uvicorn")
        gw.start(timeout=60)
        if "streams" in args.only:
            command = [sys.executable, "manage.py", "feeds", "--only", "prices"]
            if args.profile:
                spy = str(Path(sys.executable).with_name("py-spy"))
                command = [spy, "record", "--nonblocking", "-r", "100", "-f", "speedscope", "-o", args.profile,
                           "--", *command]  # fmt: skip
            producer = subprocess.Popen(
                command,
                cwd=ROOT,
                preexec_fn=die_with_parent,
                env=env_for(
                    prefix,
                    PRICES_STREAM_URLS=json.dumps(urls["streams"]),
                    FEEDS_HEALTH_INTERVAL="1",
                    PRICES_DEVIATION_BPS=str(args.deviation_bps),
                ),
            )
            wait(lambda: ((h := feed_health(gw.http_url)) and h.get("ok")) or None, "four live venue streams", 60)  # type: ignore[union-attr]
            time.sleep(5)  # every channel has a latest value (steady state)
            feed_pid = producer.pid if not args.profile else child_pid(producer.pid)
            results["streams"] = measure(gw, args, feed_pid, venues)
            results["streams"]["feed_health"] = feed_health(gw.http_url)
            os.kill(feed_pid, signal.SIGTERM)  # (under py-spy: the profile is written when it exits)
            producer.wait(60)
            producer = None
        if "rest" in args.only:
            producer = subprocess.Popen(
                [sys.executable, "-m", "bench.prices_rest_tick"], cwd=ROOT, preexec_fn=die_with_parent,
                env=env_for(prefix, PRICES_DEVIATION_BPS=str(args.deviation_bps))
            )  # fmt: skip
            time.sleep(10)  # two ticks: warm state
            results["rest"] = measure(gw, args, producer.pid, venues)
            producer.send_signal(signal.SIGTERM)
            producer.wait(30)
            producer = None
        venues.stdin.write("stats\n")
        venues.stdin.flush()
        results["venues"] = json.loads(venues.stdout.readline())
    finally:
        if producer is not None:
            producer.kill()
            producer.wait(10)
        if gw is not None:
            gw.stop()
        try:
            venues.stdin.write("stop\n")
            venues.stdin.flush()
            venues.wait(20)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            venues.kill()
    if "streams" in results and "rest" in results:
        s, r = results["streams"], results["rest"]
        results["ratio_p50"] = round(float(r["p50_ms"]) / float(s["p50_ms"]), 1)
        results["ratio_p99"] = round(float(r["p99_ms"]) / float(s["p99_ms"]), 1)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
