"""Hub intake candidates (issue #10): Redis pub/sub (the product) against a per-gateway
Redis stream read in batches, same publications, same machine, same run.

Both sides run the product's own code where it exists:
- publishers: `RedisHistory.publish` (one Lua call per batch of 500: history append and
  delivery), from two processes at once. For pub/sub the script PUBLISHes each
  publication on its channel's group (the product); for the stream candidate the same
  script, with that PUBLISH replaced, XADDs it to the stream of every gateway that joined
  the channel (a Redis set per channel, `MAXLEN ~` trimmed).
- consumer (one process, standing for one gateway): pub/sub is the product's
  `PubSubIntake` (one subscribed connection, every socket read parsed whole); the stream
  candidate reads `XREAD COUNT 1000 BLOCK` on one connection with the same RESP parser.
  Each publication is decoded and parsed as the hub does (`layer_messages.decode`/`parse`)
  before sequencing; fan-out is not part of this comparison (it is the same after).

Measured: publications/s the consumer took (offered as fast as the publishers go), its
CPU per publication (1e6 / that = what one core could take), publisher CPU per
publication, and Redis' own CPU per publication (INFO cpu).

Usage: .venv/bin/python -m bench.intake_alternatives [--count 200000] [--json out.json]
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
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CHANNELS = 100
BATCH = 500
PUBLISHERS = 2
#: A publication like the live path benchmark's (~200 bytes of JSON).
PAYLOAD = '{"n":%d,"t":0,"symbol":"BTC","price":97000.5,"pad":"' + "x" * 96 + '"}'

_PUBLISH_LINE = "  redis.call('PUBLISH', ARGV[a + 3], cmsgpack.pack({"
_STREAM_LINES = """  local msg = cmsgpack.pack({"""
_STREAM_AFTER = """
  for _, stream in ipairs(redis.call('SMEMBERS', ARGV[a + 3])) do
    redis.call('XADD', stream, 'MAXLEN', '~', 200000, '*', 'm', msg)
  end"""


def stream_script() -> str:
    """The product's publish script with its PUBLISH replaced by XADDs to member streams."""
    from realtime_project.gateway import history_redis

    source = history_redis._PUBLISH
    start = source.index(_PUBLISH_LINE)
    end = source.index("}))", start) + 3
    call = source[start:end]
    replaced = _STREAM_LINES + call[len(_PUBLISH_LINE) : -1] + _STREAM_AFTER
    return source.replace(call, replaced)


def members_key(prefix: str, channel: str) -> str:
    return f"{prefix}:gw:{channel}"


def stream_key(prefix: str) -> str:
    return f"{prefix}:stream:gw1"


def pubsub_name(prefix: str, channel: str) -> str:
    from realtime_project.gateway.layer_messages import channel_group, pubsub_channel

    return pubsub_channel(prefix, channel_group(channel))


# --- publisher process -------------------------------------------------------------------


async def publisher(mode: str, prefix: str, start: int, count: int) -> None:
    from realtime_project.gateway.history_redis import RedisHistory

    history = RedisHistory(REDIS_URL, prefix=prefix)
    if mode == "stream":
        history._publish = history._client.register_script(stream_script())
    cpu0 = time.process_time()
    began = time.perf_counter()
    for first in range(start, start + count, BATCH):
        items = []
        for n in range(first, min(first + BATCH, start + count)):
            channel = f"prices:C{n % CHANNELS}"
            target = members_key(prefix, channel) if mode == "stream" else pubsub_name(prefix, channel)
            items.append((channel, PAYLOAD % n, 10, 600.0, target))
        await history.publish(items, idempotency_key=secrets.token_hex(8), idempotency_ttl=60)
    out = {"cpu_s": time.process_time() - cpu0, "seconds": time.perf_counter() - began}
    await history.close()
    print(json.dumps(out), flush=True)


# --- consumer (in this process) ------------------------------------------------------------


class Counter:
    def __init__(self, total: int) -> None:
        self.total = total
        self.seen = 0
        self.first = 0.0
        self.last = 0.0
        self.done = asyncio.Event()

    def take(self, data: bytes) -> None:
        from realtime_project.gateway.layer_messages import Publications, decode, parse

        event = parse(decode(data))
        assert isinstance(event, Publications)
        self.seen += len(event.items)
        now = time.perf_counter()
        if not self.first:
            self.first = now
        self.last = now
        if self.seen >= self.total:
            self.done.set()


async def consume_pubsub(prefix: str, counter: Counter, ready: asyncio.Event) -> None:
    from realtime_project.gateway.hub.intake import PubSubIntake

    up = asyncio.Event()
    intake = PubSubIntake(
        REDIS_URL, lambda _channel, data: counter.take(data), on_up=lambda _r: up.set(), on_down=lambda _e: None
    )
    task = asyncio.get_running_loop().create_task(intake.run())
    await up.wait()
    for k in range(CHANNELS):
        await intake.subscribe(pubsub_name(prefix, f"prices:C{k}"))
    ready.set()
    await counter.done.wait()
    task.cancel()


async def consume_stream(prefix: str, counter: Counter, ready: asyncio.Event) -> None:
    import redis.asyncio as aioredis

    from realtime_project.gateway.hub.intake import RespParser, command

    admin = aioredis.Redis.from_url(REDIS_URL)
    for k in range(CHANNELS):  # this gateway joins every channel
        await admin.sadd(members_key(prefix, f"prices:C{k}"), stream_key(prefix))
    await admin.aclose()
    url = urlsplit(REDIS_URL)
    reader, writer = await asyncio.open_connection(url.hostname or "127.0.0.1", url.port or 6379)
    parser = RespParser()
    last = b"$"
    ready.set()
    key = stream_key(prefix)
    while not counter.done.is_set():
        writer.write(command("XREAD", "COUNT", "1000", "BLOCK", "2000", "STREAMS", key, last))
        replies: list[Any] = []
        while not replies:
            replies = parser.feed(await reader.read(1 << 20))
        reply = replies[0]
        if reply is None:
            continue  # BLOCK timed out
        for _stream, entries in reply:
            for entry_id, fields in entries:
                counter.take(fields[1])
                last = entry_id
    writer.close()


async def run_mode(mode: str, count: int) -> dict[str, Any]:
    import redis.asyncio as aioredis

    prefix = f"ia{secrets.token_hex(3)}"
    counter = Counter(count)
    ready = asyncio.Event()
    consume = consume_pubsub if mode == "pubsub" else consume_stream
    task = asyncio.get_running_loop().create_task(consume(prefix, counter, ready))
    await ready.wait()
    await asyncio.sleep(0.3)
    admin = aioredis.Redis.from_url(REDIS_URL)
    redis_cpu0 = await redis_cpu(admin)
    cpu0 = time.process_time()
    share = count // PUBLISHERS
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.intake_alternatives",
            "--publisher",
            mode,
            prefix,
            str(k * share),
            str(share),
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        for k in range(PUBLISHERS)
    ]
    began = time.perf_counter()
    pubs = []
    for proc in procs:
        out, _ = await proc.communicate()
        pubs.append(json.loads(out.decode().strip().splitlines()[-1]))
    offered_s = time.perf_counter() - began
    await asyncio.wait_for(counter.done.wait(), 60)
    cpu = time.process_time() - cpu0
    redis_cpu1 = await redis_cpu(admin)
    await task
    async for key in admin.scan_iter(f"{prefix}*", count=1000):
        await admin.delete(key)
    await admin.aclose()
    took = counter.last - counter.first
    return {
        "publications": count,
        "offered_per_s": round(count / offered_s),
        "consumer_per_s": round(count / max(took, offered_s)),
        "consumer_cpu_us_per_publication": round(cpu * 1e6 / count, 2),
        "one_core_could_take_per_s": round(count / cpu),
        "publisher_cpu_ms_per_publication": round(sum(p["cpu_s"] for p in pubs) * 1000 / count, 4),
        "redis_cpu_us_per_publication": round((redis_cpu1 - redis_cpu0) * 1e6 / count, 2),
    }


async def redis_cpu(client: Any) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")
    if len(sys.argv) > 1 and sys.argv[1] == "--publisher":
        import django

        django.setup()
        mode, prefix, start, count = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        asyncio.run(publisher(mode, prefix, start, count))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    import django

    django.setup()
    results: dict[str, list[dict[str, Any]]] = {"pubsub": [], "stream": []}
    for _ in range(args.rounds):  # interleaved rounds: the machine's noise hits both
        for mode in ("pubsub", "stream"):
            result = asyncio.run(run_mode(mode, args.count))
            results[mode].append(result)
            print(f"{mode:7} {result}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
