"""Two real `manage.py feeds` processes on one lease in real Redis: one publishes, the
other stands by. The standby takes over a killed (kill -9) leader at once, long before its
lease would have lapsed (Redis saw its connection close), and a paused (SIGSTOP) leader
only once its lease lapsed (within twice the lease's duration); the old leader, resumed,
cannot publish another message (its fencing token is refused) and stands down. Seq stays
gap-free through the takeover. (test_lease_redis.py shows the refusal itself
deterministically, in one process.)"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
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


def ticker_env(tmp_path: Path, duration: float, renew: float) -> dict[str, str]:
    return {
        "FEEDS_EXTRA_MODULES": "tests.support.sample_feeds",
        "SAMPLE_FEEDS": "ticker",
        "FEEDS_ONLY": "sample.ticker",
        "SAMPLE_FEEDS_DIR": str(tmp_path),
        "FEEDS_LEASE_DURATION": str(duration),
        "FEEDS_LEASE_RENEW": str(renew),
        "FEEDS_LEASE_RETRY": "0.1",
        "FEEDS_HEALTH_INTERVAL": "0.5",
    }


@asynccontextmanager
async def collecting(redis_url: str, key_prefix: str) -> AsyncIterator[list[dict[str, Any]]]:
    """The publications to `prices:LEASETEST`, as they arrive."""
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
    try:
        yield got
    finally:
        collector.cancel()
        await pubsub.aclose()
        await client.aclose()


async def leader_and_standby(got: list[dict[str, Any]], procs: list[Any]) -> tuple[Any, Any]:
    """Both started at once: the one publishing (`a`) and the one standing by (`b`)."""
    publisher = await until(lambda: got and got[0]["payload"], "a process publishing")
    first, second = procs
    a, b = (first, second) if f'"pid":{first.proc.pid}' in publisher else (second, first)
    await until(lambda: "standby until lease" in b.read_log(), "the other process standing by")
    return a, b


def assert_handed_over(got: list[dict[str, Any]], pid_a: int, pid_b: int) -> None:
    """`a` published, then only `b`; one epoch, every seq once, in order (a refused
    publication takes no seq)."""
    payloads = [m["payload"] for m in got]
    first_b = next(i for i, p in enumerate(payloads) if f'"pid":{pid_b}' in p)
    assert all(f'"pid":{pid_a}' not in p for p in payloads[first_b:])
    assert all(f'"pid":{pid_a}' in p for p in payloads[:first_b])
    assert len({m["epoch"] for m in got}) == 1
    seqs = [m["seq"] for m in got]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


async def test_standby_takes_over_a_killed_leader_long_before_its_lease_would_lapse(
    redis_url: str, key_prefix: str, tmp_path: Path, feeds_process: Any
) -> None:
    duration, renew = 10.0, 1.0  # long: a takeover by expiry could not pass for an early one
    env = ticker_env(tmp_path, duration, renew)
    async with collecting(redis_url, key_prefix) as got:
        procs = [feeds_process(redis=redis_url, key_prefix=key_prefix, extra=env) for _ in range(2)]
        a, b = await leader_and_standby(got, procs)
        pid_a, pid_b = a.proc.pid, b.proc.pid
        a.signal(signal.SIGKILL)
        killed_at = time.monotonic()
        await until(lambda: any(f'"pid":{pid_b}' in m["payload"] for m in got), "the standby publishing")
        takeover = time.monotonic() - killed_at
    # Its last renewal was at most `renew` before the kill: the lease would have lapsed
    # `duration - renew` after it at the earliest.
    assert takeover < duration - renew, f"took over after {takeover:.2f}s"
    assert "is gone (its Redis connection closed); taking over" in b.read_log()
    assert a.wait() == -signal.SIGKILL
    assert_handed_over(got, pid_a, pid_b)
    b.signal(signal.SIGTERM)
    assert b.wait() == 0


async def test_standby_takes_over_a_paused_leader_which_is_then_fenced_out(
    redis_url: str, key_prefix: str, tmp_path: Path, feeds_process: Any
) -> None:
    renew = 0.3
    env = ticker_env(tmp_path, DURATION, renew)
    marks = tmp_path / "ticker"
    async with collecting(redis_url, key_prefix) as got:
        procs = [feeds_process(redis=redis_url, key_prefix=key_prefix, extra=env) for _ in range(2)]
        a, b = await leader_and_standby(got, procs)
        pid_a, pid_b = a.proc.pid, b.proc.pid
        seen = len(got)
        await asyncio.sleep(4 * renew)  # several renewals: the standby stays a standby
        assert len(got) > seen and not any(f'"pid":{pid_b}' in m["payload"] for m in got)

        a.signal(signal.SIGSTOP)  # paused (a GC pause, a frozen VM): it cannot renew
        paused_at = time.monotonic()
        await until(lambda: any(f'"pid":{pid_b}' in m["payload"] for m in got), "the standby publishing")
        takeover = time.monotonic() - paused_at
        # Its connection stays open: no early takeover, only once the lease lapsed (renewed
        # at most `renew` before the pause).
        assert DURATION - renew - 0.1 < takeover < 2 * DURATION, f"took over after {takeover:.2f}s"

        a.signal(signal.SIGCONT)  # it wakes up believing it leads, for a moment
        await until(lambda: marks.exists() and f"stopped {pid_a}" in marks.read_text(), "the old leader stopping")
        count = len(got)
        await asyncio.sleep(0.5)
        assert len(got) > count  # the new leader carries on

    # Woken, the old leader published nothing more: its ticker, if it tried before its
    # lease loop noticed (most runs: the ticker's timer is due first), was refused.
    assert_handed_over(got, pid_a, pid_b)
    a_log = a.read_log()
    assert "lost or given up; stopping the feeds (standby)" in a_log, a_log
    assert "feeds: active" in b.read_log()

    b.signal(signal.SIGTERM)
    a.signal(signal.SIGTERM)
    assert b.wait() == 0 and a.wait() == 0
