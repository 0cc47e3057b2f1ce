"""Two real `manage.py feeds` processes on one lease in real Redis: one publishes, the
other stands by; the standby takes over a paused (SIGSTOP) leader within twice the
lease's duration, and the old leader, resumed, cannot publish another message (its
fencing token is refused) and stands down. Seq stays gap-free through the takeover.
(test_lease_redis.py shows the refusal itself deterministically, in one process.)"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
import redis.asyncio as aioredis

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

DURATION = 1.5


async def until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not in {timeout}s")


async def test_standby_takes_over_a_paused_leader_which_is_then_fenced_out(
    redis_url: str, key_prefix: str, tmp_path: Path, feeds_process: Any
) -> None:
    env = {
        "FEEDS_EXTRA_MODULES": "tests.support.sample_feeds",
        "SAMPLE_FEEDS": "ticker",
        "FEEDS_ONLY": "sample.ticker",
        "SAMPLE_FEEDS_DIR": str(tmp_path),
        "FEEDS_LEASE_DURATION": str(DURATION),
        "FEEDS_LEASE_RENEW": "0.3",
        "FEEDS_LEASE_RETRY": "0.1",
        "FEEDS_HEALTH_INTERVAL": "0.5",
    }
    client = aioredis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(f"{key_prefix}__group__rt.prices.LEASETEST")
    got: list[dict[str, Any]] = []

    async def collect() -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message is not None:
                got.append(msgpack.unpackb(message["data"], raw=False))

    collector = asyncio.create_task(collect())
    marks = tmp_path / "ticker"
    try:
        # Both at once: one wins the lease (`a`), the other stands by (`b`).
        first, second = (feeds_process(redis=redis_url, key_prefix=key_prefix, extra=env) for _ in range(2))
        publisher = await until(lambda: got and got[0]["payload"], "a process publishing")
        a, b = (first, second) if f'"pid":{first.proc.pid}' in publisher else (second, first)
        pid_a, pid_b = a.proc.pid, b.proc.pid
        await until(lambda: "standby until lease" in b.read_log(), "the other process standing by")
        seen = len(got)
        await asyncio.sleep(4 * 0.3)  # several renewals: the standby stays a standby
        assert len(got) > seen and not any(f'"pid":{pid_b}' in m["payload"] for m in got)

        a.signal(signal.SIGSTOP)  # paused (a GC pause, a frozen VM): it cannot renew
        paused_at = time.monotonic()
        await until(lambda: any(f'"pid":{pid_b}' in m["payload"] for m in got), "the standby publishing")
        takeover = time.monotonic() - paused_at
        assert takeover < 2 * DURATION, f"took over after {takeover:.2f}s"

        a.signal(signal.SIGCONT)  # it wakes up believing it leads, for a moment
        await until(lambda: marks.exists() and f"stopped {pid_a}" in marks.read_text(), "the old leader stopping")
        count = len(got)
        await asyncio.sleep(0.5)
        assert len(got) > count  # the new leader carries on
    finally:
        collector.cancel()
        await pubsub.aclose()
        await client.aclose()

    # Woken, the old leader published nothing more: its ticker, if it tried before its
    # lease loop noticed (most runs: the ticker's timer is due first), was refused.
    payloads = [m["payload"] for m in got]
    first_b = next(i for i, p in enumerate(payloads) if f'"pid":{pid_b}' in p)
    assert all(f'"pid":{pid_a}' not in p for p in payloads[first_b:])
    assert all(f'"pid":{pid_a}' in p for p in payloads[:first_b])
    # One epoch, every seq once, in order: a refused publication takes no seq.
    assert len({m["epoch"] for m in got}) == 1
    seqs = [m["seq"] for m in got]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    a_log = a.read_log()
    assert "lost or given up; stopping the feeds (standby)" in a_log, a_log
    assert "feeds: active" in b.read_log()

    b.signal(signal.SIGTERM)
    a.signal(signal.SIGTERM)
    assert b.wait() == 0 and a.wait() == 0
