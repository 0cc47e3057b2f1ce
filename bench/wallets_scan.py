"""Chain scan benchmark: 1,000 blocks, 10,000 watched addresses, 20,000 token logs, on anvil.

Usage: .venv/bin/python -m bench.wallets_scan [--blocks 1000] [--logs-per-block 20]
       [--watched 10000] [--hit-rate 0.1] [--repeat 3] [--tune-gc]

A real node (anvil from contracts/node_modules, over HTTP) holds `blocks` blocks, each with
one transaction emitting `logs-per-block` ERC-20 Transfer logs; `hit-rate` of them move
tokens from or to one of `watched` linked addresses. Two scanners read the same blocks:

- `chain_scan` (this app): batched blocks, ranged eth_getLogs by topic0 with local set
  filtering, string-level decoding, one bulk insert and one cursor update per batch;
- a naive baseline: per block eth_getBlockByNumber + eth_getLogs, web3's ABI decoding of
  every log (`contract.events.Transfer().process_log`), one get_or_create per row.

Both write activity rows to a fresh SQLite database and publish frames (embedded mode).
Reported: processing time excluding time spent waiting on RPC, blocks/s, RPC calls per block.
Ours runs `--repeat` times (each a first scan of the same blocks on emptied tables; the
median is compared with the naive run, which is ~60x longer and so averages out the
machine's noise by itself); garbage-collector pauses are timed with `gc.callbacks`.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import tempfile
import time
from typing import Any


def setup_django(db_path: str) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def build_chain(url: str, blocks: int, per_block: int, watched: list[str], hit_rate: float) -> tuple[str, int, int]:
    from web3 import HTTPProvider, Web3

    from tests.wallets.conftest import artifact

    w3 = Web3(HTTPProvider(url))
    sender = w3.eth.accounts[0]
    art = artifact("BenchEmitter")
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor().transact({"from": sender}))
    emitter = w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])
    rng = random.Random(7)
    start = w3.eth.block_number + 1
    hits = 0
    for _ in range(blocks):
        frm, to = [], []
        for _ in range(per_block):
            a = "0x" + rng.randbytes(20).hex()
            b = "0x" + rng.randbytes(20).hex()
            if rng.random() < hit_rate:
                hits += 1
                if rng.random() < 0.5:
                    a = rng.choice(watched)
                else:
                    b = rng.choice(watched)
            frm.append(Web3.to_checksum_address(a))
            to.append(Web3.to_checksum_address(b))
        emitter.functions.emitTransfers(frm, to, 1).transact({"from": sender, "gas": 3_000_000})
    return emitter.address, start, hits


class GcTimer:
    """Time spent in the garbage collector, and full (generation 2) collections, while active."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self._started = 0.0

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.full += info["generation"] == 2


def reset_scan_state(chain_id: int) -> None:
    """Empty what a scan wrote, so the next run is again a first scan of the same blocks."""
    from wallets import blocks, tokens
    from wallets.models import Balance, ChainCursor, ScannedBlock, SkippedLog, TokenMetadata, WalletActivity

    for model in (WalletActivity, Balance, ScannedBlock, SkippedLog, TokenMetadata, ChainCursor):
        model.objects.filter(chain__chain_id=chain_id).delete()
    tokens.clear_cache()
    blocks.LOG_RANGES.set({})  # ranges learned by the last run


def run_ours(chain_id: int, start: int, blocks: int) -> dict[str, Any]:
    from wallets.blocks import BlockListener
    from wallets.models import WalletActivity
    from wallets.scanning.scanner import chain_scan

    listener = BlockListener()
    with GcTimer() as gc_timer:
        t0 = time.perf_counter()
        result = chain_scan(chain_id=chain_id, listener=listener, max_blocks=blocks)
        wall = time.perf_counter() - t0
    assert result.error == "", result
    assert result.blocks == blocks, result
    client = listener.client(type("C", (), {"chain_id": chain_id, "rpc_url": ""})())  # type: ignore[arg-type]
    return {
        "wall": wall,
        "rpc": result.rpc_seconds,
        "calls": result.rpc_calls,
        "requests": result.rpc_requests,
        "write": result.write_seconds,
        "commit": result.commit_seconds,
        "publish": result.publish_seconds,
        "gc": gc_timer.seconds,
        "gc_full": gc_timer.full,
        "by_method": dict(client.calls),
        "rows": WalletActivity.objects.filter(kind__in=("transaction",)).count(),
    }


def run_decode_only(chain_id: int, start: int, blocks: int, watched: set[str]) -> dict[str, Any]:
    """The pure parts alone (no RPC, no DB): JSON logs to records; parse, filter, build the payloads."""
    from wallets.blocks import BlockListener, LogFilter
    from wallets.logs import parse_logs
    from wallets.payloads import event_update
    from wallets.rpc import _raw_log
    from wallets.selectors import chain_get

    chain = chain_get(chain_id=chain_id)
    listener = BlockListener()
    query = {"fromBlock": hex(start), "toBlock": hex(start + blocks - 1), "topics": LogFilter().queries()[0]}
    raw = listener.client(chain)._raw("eth_getLogs", [query])
    t0 = time.perf_counter()
    records = [_raw_log(item) for item in raw]  # what ChainClient.logs does to each log
    records_seconds = time.perf_counter() - t0
    logs = listener.fetch_logs(chain, LogFilter(), start, start + blocks - 1)
    assert logs == records
    t0 = time.perf_counter()
    events, _ = parse_logs(logs, watched)
    for event in events:
        event_update(event, chain_id=chain_id, token=None, head=start + blocks, required=1, timestamp_ms=0)
    return {"seconds": time.perf_counter() - t0, "records": records_seconds, "logs": len(logs), "events": len(events)}


def run_naive(url: str, chain_pk: int, start: int, blocks: int, watched: set[str], emitter: str) -> dict[str, Any]:
    from datetime import UTC, datetime

    from django.db import transaction
    from web3 import HTTPProvider, Web3

    from realtime_project.gateway.api import publish_on_commit
    from tests.wallets.conftest import artifact
    from wallets.models import WalletActivity

    w3 = Web3(HTTPProvider(url))
    contract = w3.eth.contract(address=emitter, abi=artifact("BenchEmitter")["abi"])
    event = contract.events.Transfer()
    topic = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
    rpc = 0.0
    calls = 0
    rows = 0
    t0 = time.perf_counter()
    for number in range(start, start + blocks):
        r0 = time.perf_counter()
        block = w3.eth.get_block(number, full_transactions=True)
        logs = w3.eth.get_logs({"fromBlock": number, "toBlock": number, "topics": [topic]})
        rpc += time.perf_counter() - r0
        calls += 2
        for log in logs:
            decoded = event.process_log(log)
            for party in (decoded.args["from"], decoded.args["to"]):
                if party.lower() in watched:
                    with transaction.atomic():
                        _, created = WalletActivity.objects.get_or_create(
                            chain_id=chain_pk,
                            address=party,
                            kind="transaction",
                            block_hash=Web3.to_hex(block["hash"]),
                            tx_hash=Web3.to_hex(log["transactionHash"]),
                            log_index=log["logIndex"] + 1_000_000,  # never collides with ours
                            token=log["address"],
                            defaults={
                                "block_number": number,
                                "payload": {"type": "transaction", "address": party, "value": decoded.args["value"]},
                                "timestamp": datetime.fromtimestamp(block["timestamp"], tz=UTC),
                            },
                        )
                        if created:
                            rows += 1
                            publish_on_commit(f"wallet:{party}", {"type": "transaction", "address": party})
    return {"wall": time.perf_counter() - t0, "rpc": rpc, "calls": calls, "requests": calls, "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=1000)
    parser.add_argument("--logs-per-block", type=int, default=20)
    parser.add_argument("--watched", type=int, default=10_000)
    parser.add_argument("--hit-rate", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=3, help="runs of ours (median reported)")
    parser.add_argument(
        "--tune-gc",
        action="store_true",
        help="apply the serve process's GC tuning first (embedded mode scans there; Celery workers do not)",
    )
    args = parser.parse_args(argv)

    fd, db = tempfile.mkstemp(prefix="wallets-bench-", suffix=".sqlite3")
    os.close(fd)
    setup_django(db)
    from django.contrib.auth import get_user_model

    from tests.wallets.nodes import Anvil
    from wallets.models import Wallet
    from wallets.services.chains import chain_register

    anvil = Anvil("--gas-limit", "100000000")
    try:
        rng = random.Random(3)
        watched = [Web3_checksum("0x" + rng.randbytes(20).hex()) for _ in range(args.watched)]
        user = get_user_model().objects.create_user(username="bench")
        Wallet.objects.bulk_create([Wallet(user=user, address=a, watch_only=True) for a in watched])
        t0 = time.perf_counter()
        emitter, start, hits = build_chain(anvil.url, args.blocks, args.logs_per_block, watched, args.hit_rate)
        print(
            f"built {args.blocks} blocks, {args.blocks * args.logs_per_block} logs ({hits} touch watched addresses) "
            f"in {time.perf_counter() - t0:.1f}s",
            file=sys.stderr,
        )
        chain = chain_register(
            chain_id=31337, name="anvil", rpc_url=anvil.url, required_confirmations=1, start_block=start
        )
        if args.tune_gc:
            from realtime_project.server import tune_gc

            tune_gc()  # for both scanners: gc.freeze() of what is alive now, young threshold 50,000
        runs = []
        for n in range(args.repeat):
            if n:
                reset_scan_state(chain.chain_id)
            runs.append(run_ours(chain.chain_id, start, args.blocks))
        decode = run_decode_only(chain.chain_id, start, args.blocks, {a.lower() for a in watched})
        with GcTimer() as naive_gc:
            naive = run_naive(anvil.url, chain.pk, start, args.blocks, {a.lower() for a in watched}, emitter)
        naive["gc"] = naive_gc.seconds
    finally:
        anvil.stop()
        os.unlink(db)

    def processing(r: dict[str, Any]) -> float:
        return float(r["wall"] - r["rpc"])

    def report(name: str, r: dict[str, Any]) -> float:
        rate = args.blocks / processing(r)
        print(
            f"{name:6s} wall {r['wall']:7.2f}s  rpc {r['rpc']:6.2f}s  processing {processing(r):6.3f}s "
            f"{rate:7.0f} blocks/s  {r['calls'] / args.blocks:5.2f} calls/block  "
            f"{r['requests'] / args.blocks:5.3f} HTTP requests/block  rows {r['rows']}  gc {r['gc']:.3f}s"
        )
        return rate

    print(
        f"blocks={args.blocks} logs={args.blocks * args.logs_per_block} watched={args.watched} "
        f"hit_rate={args.hit_rate} gc={'tuned (serve process)' if args.tune_gc else 'default (Celery worker)'}"
    )
    for n, r in enumerate(runs, 1):
        report(f"ours#{n}", r)
    ours = sorted(runs, key=processing)[len(runs) // 2]
    ours_rate = report("ours", ours)
    naive_rate = report("naive", naive)
    print(f"ours by method: {ours['by_method']}")
    print(
        f"pure parts alone: log records from JSON {decode['records']:.3f}s, "
        f"decode+filter+payloads {decode['seconds']:.3f}s for {decode['logs']} logs -> "
        f"{args.blocks / decode['seconds']:.0f} blocks/s ({decode['events']} events)"
    )
    rest = processing(ours) - ours["write"] - ours["commit"] - ours["publish"]
    print(
        f"ours processing breakdown (median run): db statements {ours['write']:.3f}s, commit {ours['commit']:.3f}s, "
        f"publish after commit {ours['publish']:.3f}s, fetch/decode/build/other {rest:.3f}s; "
        f"gc {ours['gc']:.3f}s ({ours['gc_full']} full) inside RPC or processing"
    )
    print(
        f"processing speed-up vs naive: {ours_rate / naive_rate:.1f}x;  "
        f"RPC calls/block ours/naive: {ours['calls'] / naive['calls']:.2f};  "
        f"HTTP requests/block ours/naive: {ours['requests'] / naive['requests']:.3f}"
    )


def Web3_checksum(address: str) -> str:
    from web3 import Web3

    return str(Web3.to_checksum_address(address))


if __name__ == "__main__":
    main()
