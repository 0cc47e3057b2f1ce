"""Wallets in real time (issue #13): block mined -> wallet frame at the client, pushed heads
vs today's polling path in the same run; and the history read on link (backfill).

Usage: .venv/bin/python -m bench.wallets_live [--only live,backfill] [--blocks 30]
       [--wallets 1000] [--clients 500] [--transfers 200] [--backfill-blocks 10000]
       [--json out.json]
Needs anvil (`cd contracts && npm ci`), Redis on 127.0.0.1:6379 (BENCH_REDIS_URL) and
PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/realtime_bench_wallets:
dropped and created again by each run).

live: anvil mines a block every second (`--block-time 1`); `--wallets` addresses are
linked by `--clients` users (two each), each user with one WebSocket to a uvicorn gateway
subscribed to its wallets (bench/wallets_clients.py, its own process). After each block
the driver sends one transaction emitting `--transfers` ERC-20 `Transfer` logs, each
touching exactly one linked wallet (from or to it), so every block carries that many
wallet frames. The driver's own `newHeads` subscription on anvil stamps each block's
arrival: latency = frame received by its client - block announced by the node. Two
phases, `--blocks` blocks each, same node, gateway and clients:

- pushed: `manage.py feeds` (feed `wallets.chains`: newHeads over anvil's WebSocket, a scan
  per head), then a SIGTERM (its clean stop hands the chain back to beat);
- polling (today's path): Celery beat (DatabaseScheduler, the single entry `wallets: scan
  due chains` every second) -> `scan_chain` on a Celery worker (solo pool), with the
  chain's `poll_interval` at 1 s, the best the beat entry allows (the default for chain
  31337 is 12 s).

The first 2 blocks of each phase are warm-up and not counted.

backfill: another anvil holds `--backfill-blocks` blocks (one transaction of 20 transfers
touching linked wallets every 10 blocks); `--wallets` addresses are linked at once (one
history each, `backfill_blocks` = all of them), then `backfill_run` reads the history in
this process. Reported: wall time, time waiting on the node (every JSON-RPC call timed),
and processing = wall - node.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/realtime_bench_wallets")
PREFIX = f"bw{secrets.token_hex(3)}"
QUEUE = f"{PREFIX}-wallets"
SECRET_KEY = secrets.token_urlsafe(50)
WARMUP_BLOCKS = 2


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    out.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        SECRET_KEY=SECRET_KEY,
        SECURE_SSL_REDIRECT="0",
        REALTIME_KEY_PREFIX=PREFIX,
        CHANNEL_PREFIX=PREFIX,
        CACHE_PREFIX=PREFIX,
        CELERY_QUEUE=QUEUE,
        DJANGO_SETTINGS_MODULE="realtime_project.settings",
        EMBEDDED_SCHEDULER="off",
        EMBEDDED_FEEDS="off",
        WALLETS_DEV_CHAIN="0",
        LOG_LEVEL="WARNING",
        LOG_FORMAT="text",
        PYTHONUNBUFFERED="1",
    )
    return out


def fresh_database() -> None:
    import psycopg

    base, name = DATABASE_URL.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django() -> None:
    os.environ.update(env())
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (celery's solo pool is the process itself)."""
    total = proc_cpu(pid)
    for child in Path(f"/proc/{pid}/task").iterdir():
        children = child / "children"
        if children.exists():
            for cpid in children.read_text().split():
                try:
                    total += proc_cpu(int(cpid))
                except (FileNotFoundError, ProcessLookupError):
                    pass
    return total


def deploy_emitter(url: str) -> Any:
    from web3 import HTTPProvider, Web3

    from tests.wallets.conftest import artifact

    w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": 60}))
    art = artifact("BenchEmitter")
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor().transact({"from": w3.eth.accounts[0]}))
    return w3, w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])


def rpc_batch(url: str, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    import urllib.request

    body = json.dumps(calls).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def random_addresses(rng: random.Random, n: int) -> list[str]:
    from web3 import Web3

    return [str(Web3.to_checksum_address("0x" + rng.randbytes(20).hex())) for _ in range(n)]


def link_wallets(
    chain: Any, addresses: list[str], per_user: int, *, with_tokens: bool, name: str
) -> list[dict[str, Any]]:
    """Users (`per_user` wallets each, watch-only rows made directly: no link side effects)."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from wallets.models import Wallet

    User = get_user_model()
    n_users = (len(addresses) + per_user - 1) // per_user
    users = User.objects.bulk_create([User(username=f"{name}{i}", password="!") for i in range(n_users)])
    wallets = Wallet.objects.bulk_create(
        [Wallet(user=users[i // per_user], address=a, watch_only=True) for i, a in enumerate(addresses)]
    )
    Wallet.chains.through.objects.bulk_create(
        [Wallet.chains.through(wallet_id=w.pk, chain_id=chain.pk) for w in wallets]
    )
    if not with_tokens:
        return []
    tokens = Token.objects.bulk_create([Token(user=u, key=secrets.token_hex(20)) for u in users])
    return [{"token": t.key, "addresses": addresses[i * per_user : (i + 1) * per_user]} for i, t in enumerate(tokens)]


# --- live -------------------------------------------------------------------------------


class Driver:
    """Stamps each head announced by the node; after each one, sends a block's transfers."""

    def __init__(self, ws_url: str, w3: Any, emitter: Any, watched: list[str], transfers: int) -> None:
        self.ws_url = ws_url
        self.w3 = w3
        self.emitter = emitter
        self.watched = watched
        self.transfers = transfers
        self.rng = random.Random(11)
        self.heads: dict[int, float] = {}
        self.sending = False
        self.sent: list[tuple[str, list[str]]] = []  # (tx hash, the watched address of each log)
        self._stop = asyncio.Event()

    async def run(self) -> None:
        from websockets.asyncio.client import connect

        async with connect(self.ws_url, max_size=2**24) as ws:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}))
            json.loads(await ws.recv())
            loop = asyncio.get_running_loop()
            while not self._stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                now = time.time()
                message = json.loads(raw)
                if message.get("method") != "eth_subscription":
                    continue
                number = int(message["params"]["result"]["number"], 16)
                self.heads.setdefault(number, now)
                if self.sending:
                    loop.run_in_executor(None, self.send_block)  # not awaited: keep stamping heads

    def send_block(self) -> None:
        frm, to, touched = [], [], []
        for _ in range(self.transfers):
            wallet = self.rng.choice(self.watched)
            other = "0x" + self.rng.randbytes(20).hex()
            from web3 import Web3

            other = str(Web3.to_checksum_address(other))
            if self.rng.random() < 0.5:
                frm.append(wallet)
                to.append(other)
            else:
                frm.append(other)
                to.append(wallet)
            touched.append(wallet)
        tx = self.emitter.functions.emitTransfers(frm, to, 1).transact(
            {"from": self.w3.eth.accounts[0], "gas": 20_000_000}
        )
        self.sent.append((self.w3.to_hex(tx), touched))

    def stop(self) -> None:
        self._stop.set()


def expected_frames(w3: Any, sent: list[tuple[str, list[str]]]) -> dict[tuple[str, int, str], int]:
    """(tx hash, log index, address) -> block of every frame the clients must receive."""
    out: dict[tuple[str, int, str], int] = {}
    for tx_hash, touched in sent:
        receipt = w3.eth.get_transaction_receipt(tx_hash)
        for log, address in zip(receipt["logs"], touched, strict=True):
            out[(tx_hash.lower(), int(log["logIndex"]), address.lower())] = int(receipt["blockNumber"])
    return out


def wait_for(check: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def cursor_block(chain_id: int) -> int:
    from django.db import connections

    from wallets.models import ChainCursor

    try:
        return int(
            ChainCursor.objects.filter(chain__chain_id=chain_id).values_list("block_number", flat=True).first() or -1
        )
    finally:
        connections.close_all()


class Phase:
    """One path (pushed or polling) for `blocks` blocks of transfers."""

    def __init__(self, name: str, driver: Driver, loop: asyncio.AbstractEventLoop, w3: Any) -> None:
        self.name, self.driver, self.loop, self.w3 = name, driver, loop, w3

    def run(self, blocks: int, chain_id: int, worker_pids: list[int]) -> dict[str, Any]:
        head = int(self.w3.eth.block_number)
        wait_for(lambda: cursor_block(chain_id) >= head, f"{self.name}: the scanner to reach the head", 120)
        start_sent = len(self.driver.sent)
        cpu0 = sum(tree_cpu(p) for p in worker_pids)
        t0 = time.monotonic()
        self.driver.sending = True
        wait_for(lambda: len(self.driver.sent) - start_sent >= blocks, f"{self.name}: {blocks} blocks", blocks * 3 + 30)
        self.driver.sending = False
        sent = self.driver.sent[start_sent:]
        last = int(self.w3.eth.wait_for_transaction_receipt(sent[-1][0], timeout=30)["blockNumber"])
        wait_for(lambda: cursor_block(chain_id) >= last, f"{self.name}: the last block scanned", 60)
        time.sleep(1.0)  # the last frames in flight (published after the cursor commit)
        seconds = time.monotonic() - t0
        cpu = sum(tree_cpu(p) for p in worker_pids) - cpu0
        return {"sent": sent, "seconds": seconds, "cpu": cpu}


def analyse(name: str, phase: dict[str, Any], expected: dict[tuple[str, int, str], int], records: list[list[Any]],
            heads: dict[int, float]) -> dict[str, Any]:  # fmt: skip
    blocks = sorted(set(expected.values()))
    counted = set(blocks[WARMUP_BLOCKS:])
    got: dict[tuple[str, int, str], list[float]] = {}
    for received, _block, address, tx_hash, log_index, removed in records:
        if removed or tx_hash is None:
            continue
        key = (str(tx_hash).lower(), int(log_index), str(address).lower())
        if key in expected:
            got.setdefault(key, []).append(received)
    latencies = []
    lost = dup = 0
    for key, block in expected.items():
        if block not in counted:
            continue
        times = got.get(key, [])
        if not times:
            lost += 1
            continue
        dup += len(times) - 1
        if block in heads:
            latencies.append((min(times) - heads[block]) * 1000)
    per_block: dict[int, float] = {}
    for key, block in expected.items():
        if block in counted and key in got and block in heads:
            per_block[block] = max(per_block.get(block, 0.0), (min(got[key]) - heads[block]) * 1000)
    return {
        "path": name,
        "blocks": len(counted),
        "frames": len(latencies),
        "lost": lost,
        "dup": dup,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies) if latencies else float("nan"),
        "last_frame_of_block_p50_ms": percentile(list(per_block.values()), 50),
        "scanner_cpu_s_per_block": phase["cpu"] / max(1, len(phase["sent"])),
    }


def run_live(args: argparse.Namespace) -> list[dict[str, Any]]:
    from tests.support.feeds_process import FeedsProcess
    from tests.support.servers import ServerProcess
    from tests.wallets.nodes import Anvil
    from wallets.services.chains import chain_register

    anvil = Anvil("--block-time", "1", "--gas-limit", "100000000")
    procs: list[Any] = []
    clients: subprocess.Popen[str] | None = None
    loop = asyncio.new_event_loop()
    try:
        w3, emitter = deploy_emitter(anvil.url)
        rng = random.Random(5)
        watched = random_addresses(rng, args.wallets)
        chain = chain_register(
            chain_id=31337,
            name="anvil (1 s blocks)",
            rpc_url=anvil.url,
            ws_url=anvil.url.replace("http://", "ws://"),
            required_confirmations=1,
            poll_interval=1.0,
            start_block=int(w3.eth.block_number) + 1,
        )
        specs = link_wallets(chain, watched, args.wallets // args.clients, with_tokens=True, name="live")
        gateway = ServerProcess(env={**env(), "REALTIME_ALLOWED_ORIGINS": "http://127.0.0.1"}, server="uvicorn")
        gateway.start(timeout=60)
        procs.append(gateway)
        out = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False).name  # noqa: SIM115
        config = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)  # noqa: SIM115
        json.dump({"ws_url": gateway.ws_url, "http_url": gateway.http_url, "out": out, "clients": specs}, config)
        config.close()
        clients = subprocess.Popen(
            [sys.executable, "-m", "bench.wallets_clients", config.name],
            cwd=ROOT, env=env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert clients.stdout is not None and clients.stdin is not None
        ready = json.loads(clients.stdout.readline())
        assert ready["ready"] == len(specs) and not ready["errors"], ready
        print(f"{len(specs)} clients subscribed to {args.wallets} wallets", file=sys.stderr)

        driver = Driver(anvil.url.replace("http://", "ws://"), w3, emitter, watched, args.transfers)
        thread = threading.Thread(target=loop.run_until_complete, args=(driver.run(),), daemon=True)
        thread.start()

        phases: list[tuple[str, dict[str, Any]]] = []
        # Pushed heads: the feed process.
        feeds = FeedsProcess(extra={**env(), "FEEDS_ONLY": "wallets.chains"}).start()
        procs.append(feeds)
        assert feeds.proc is not None
        phases.append(
            (
                "pushed (feed process, newHeads)",
                Phase("pushed", driver, loop, w3).run(args.blocks, 31337, [feeds.proc.pid]),
            )
        )
        feeds.stop()
        print(f"pushed phase done; feed process stopped ({feeds.proc.returncode})", file=sys.stderr)

        # Today's polling path: beat's 1 s entry -> a Celery worker.
        from django_celery_beat.models import IntervalSchedule, PeriodicTask

        every, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.update_or_create(
            name="wallets: scan due chains", defaults={"task": "wallets.tasks.scan_due_chains", "interval": every}
        )
        worker_log = tempfile.NamedTemporaryFile("w+", prefix="worker-", suffix=".log", delete=False)  # noqa: SIM115
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "realtime_project", "worker", "-Q", QUEUE, "--pool=solo",
             "-l", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{QUEUE}@%h"],
            cwd=ROOT, env={**env(), "LOG_LEVEL": "INFO"}, stdout=worker_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        procs.append(worker)
        wait_for(lambda: "ready." in Path(worker_log.name).read_text(errors="replace"), "the Celery worker", 60)
        beat_log = tempfile.NamedTemporaryFile("w+", prefix="beat-", suffix=".log", delete=False)  # noqa: SIM115
        beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "realtime_project", "beat", "-l", "WARNING",
             "--schedule", str(Path(tempfile.gettempdir()) / f"{PREFIX}-beat")],
            cwd=ROOT, env=env(), stdout=beat_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        procs.append(beat)
        phases.append(
            (
                "polling (beat 1 s -> Celery worker)",
                Phase("polling", driver, loop, w3).run(args.blocks, 31337, [worker.pid]),
            )
        )
        driver.stop()
        thread.join(10)

        clients.stdin.write("stop\n")
        clients.stdin.flush()
        done = json.loads(clients.stdout.readline())
        records = json.loads(Path(out).read_text())
        results = []
        for name, phase in phases:
            expected = expected_frames(w3, phase["sent"])
            results.append(analyse(name, phase, expected, records, driver.heads))
        results[0]["clients"] = done
        return results
    finally:
        if clients is not None and clients.poll() is None:
            clients.kill()
        for proc in reversed(procs):
            if isinstance(proc, subprocess.Popen):
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            else:
                proc.stop()
        anvil.stop()


# --- backfill ---------------------------------------------------------------------------


def run_backfill(args: argparse.Namespace) -> dict[str, Any]:
    from django.db import transaction

    from tests.wallets.nodes import Anvil
    from wallets.blocks import BlockListener
    from wallets.models import ChainCursor, WalletActivity, WalletBackfill
    from wallets.scanning.backfill import backfill_run, backfills_on_link
    from wallets.services.chains import chain_register

    anvil = Anvil("--chain-id", "31338", "--gas-limit", "100000000")
    try:
        w3, emitter = deploy_emitter(anvil.url)
        rng = random.Random(9)
        watched = random_addresses(rng, args.wallets)
        first = int(w3.eth.block_number) + 1
        t0 = time.perf_counter()
        txs = 0
        calls: list[dict[str, Any]] = []
        nonce = int(w3.eth.get_transaction_count(w3.eth.accounts[0]))
        for n in range(0, args.backfill_blocks, 10):  # a transaction, then 9 empty blocks
            frm, to = [], []
            for _ in range(20):
                wallet, other = rng.choice(watched), random_addresses(rng, 1)[0]
                frm.append(wallet if rng.random() < 0.5 else other)
                to.append(other if frm[-1] == wallet else wallet)
            data = emitter.functions.emitTransfers(frm, to, 1)._encode_transaction_data()
            tx = {
                "from": w3.eth.accounts[0],
                "to": emitter.address,
                "data": data,
                "gas": hex(5_000_000),
                "nonce": hex(nonce + txs),
            }  # fmt: skip  (the node may run a batch's calls concurrently)
            calls.append({"jsonrpc": "2.0", "id": len(calls), "method": "eth_sendTransaction", "params": [tx]})
            txs += 1
            empty = min(9, args.backfill_blocks - n - 1)
            if empty > 0:
                calls.append({"jsonrpc": "2.0", "id": len(calls), "method": "anvil_mine", "params": [hex(empty)]})
        for i in range(0, len(calls), 200):  # JSON-RPC batches (the node may run their calls concurrently)
            replies = rpc_batch(anvil.url, calls[i : i + 200])
            assert all("error" not in r for r in replies), [r for r in replies if "error" in r][:3]
        # Concurrent calls of a batch can put several transactions in one block: top up.
        missing = first + args.backfill_blocks - 1 - int(w3.eth.block_number)
        if missing > 0:
            rpc_batch(anvil.url, [{"jsonrpc": "2.0", "id": 0, "method": "anvil_mine", "params": [hex(missing)]}])
        head = int(w3.eth.block_number)
        print(
            f"built {head - first + 1} blocks with {txs} transactions in {time.perf_counter() - t0:.1f}s",
            file=sys.stderr,
        )
        chain = chain_register(chain_id=31338, name="anvil history", rpc_url=anvil.url, required_confirmations=1)
        chain.backfill_blocks = head - first + 1
        chain.save()
        block = w3.eth.get_block(head)
        # The live scan is at the head (and found the node's call tracer), as after a first scan.
        ChainCursor.objects.create(chain=chain, block_number=head, block_hash=w3.to_hex(block["hash"]),
                                   trace_method="debug_traceBlockByNumber")  # fmt: skip
        link_wallets(chain, watched, 2, with_tokens=False, name="history")
        with transaction.atomic():
            for address in watched:
                backfills_on_link(address=address, chains=[chain])
        listener = BlockListener()
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        t0 = time.perf_counter()
        result = backfill_run(chain_id=31338, listener=listener)
        wall = time.perf_counter() - t0
        if profiler is not None:
            import pstats

            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
        n_calls, requests, rpc_seconds = listener.calls(chain)
        assert result.error == "", result
        done = WalletBackfill.objects.filter(chain=chain, state="done").count()
        rows = WalletActivity.objects.filter(chain=chain).count()
        return {
            "blocks": head - first + 1,
            "wallets": args.wallets,
            "transactions": txs,
            "rows": rows,
            "backfills_done": done,
            "wall_s": wall,
            "node_s": rpc_seconds,
            "processing_s": wall - rpc_seconds,
            "rpc_calls": n_calls,
            "http_requests": requests,
            "batches": result.batches,
        }
    finally:
        anvil.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="live,backfill")
    parser.add_argument("--blocks", type=int, default=30, help="blocks of transfers per live phase")
    parser.add_argument("--wallets", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--transfers", type=int, default=200, help="wallet transfers per block")
    parser.add_argument("--backfill-blocks", type=int, default=10_000)
    parser.add_argument("--json", default="")
    parser.add_argument("--profile", action="store_true", help="cProfile the backfill run (to stderr)")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    fresh_database()
    setup_django()
    report: dict[str, Any] = {"args": vars(args)}
    if "backfill" in only:
        report["backfill"] = b = run_backfill(args)
        print(
            f"backfill: {b['blocks']} blocks x {b['wallets']} wallets: wall {b['wall_s']:.2f}s, "
            f"node {b['node_s']:.2f}s, "
            f"processing {b['processing_s']:.2f}s; {b['rows']} rows, {b['backfills_done']} histories done, "
            f"{b['rpc_calls']} calls in {b['http_requests']} HTTP requests, {b['batches']} batches"
        )
    if "live" in only:
        report["live"] = results = run_live(args)
        print(f"live: {args.wallets} wallets, {args.clients} clients, {args.transfers} transfers/block, 1 s blocks")
        for r in results:
            print(
                f"  {r['path']:40s} blocks {r['blocks']:3d} frames {r['frames']:6d} lost {r['lost']} dup {r['dup']}  "
                f"p50 {r['p50_ms']:7.1f}  p95 {r['p95_ms']:7.1f}  p99 {r['p99_ms']:7.1f}  max {r['max_ms']:7.1f} ms  "
                f"scanner CPU {r['scanner_cpu_s_per_block'] * 1000:.0f} ms/block"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
