"""RedisHistory against the real Redis, plus a contract shared with MemoryHistory.

The contract tests run once per store: MemoryHistory (the reference implementation, time
moved by a FakeClock) and RedisHistory (real Redis, real short TTLs). Every Redis test uses
a unique key prefix and deletes its keys at teardown.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest
import redis as redis_sync
import redis.asyncio as aioredis

from realtime_project.gateway.history import HistoryStore, MemoryHistory, Position, Publication, recover
from realtime_project.gateway.history_redis import RedisHistory
from realtime_project.gateway.protocol import Since
from tests.support.clock import FakeClock

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_keys(redis_url: str, key_prefix: str) -> Iterator[redis_sync.Redis]:
    """A sync client for inspecting keys; deletes every key of this test's prefix at teardown."""
    client = redis_sync.Redis.from_url(redis_url, decode_responses=True)
    yield client
    for key in client.scan_iter(f"{key_prefix}:*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture
async def redis_history(redis_url: str, key_prefix: str, redis_keys: redis_sync.Redis) -> AsyncIterator[RedisHistory]:
    store = RedisHistory(redis_url, prefix=key_prefix)
    yield store
    await store.close()


def _keys(prefix: str, channel: str) -> list[str]:
    return [f"{prefix}:h:{{{channel}}}:{part}" for part in ("e", "s", "l")]


@dataclass
class Harness:
    """A store plus the two ways history gets lost: a flush and time passing."""

    kind: str
    store: HistoryStore
    flush: Callable[[], None]
    age: Callable[[float], Awaitable[None]]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def harness(request: pytest.FixtureRequest, key_prefix: str) -> AsyncIterator[Harness]:
    if request.param == "memory":
        clock = FakeClock()
        memory = MemoryHistory(clock)

        async def age_memory(seconds: float) -> None:
            clock.advance(seconds)

        yield Harness("memory", memory, memory.flush, age_memory)
        return
    keys: redis_sync.Redis = request.getfixturevalue("redis_keys")
    store = RedisHistory(request.getfixturevalue("redis_url"), prefix=key_prefix)

    def flush_redis() -> None:
        # What FLUSHDB would do to this test's keys, without touching anyone else's.
        for key in keys.scan_iter(f"{key_prefix}:*", count=1000):
            keys.delete(key)

    async def age_redis(seconds: float) -> None:
        await asyncio.sleep(seconds)  # real Redis expiry needs real time; TTLs here are tiny

    yield Harness("redis", store, flush_redis, age_redis)
    await store.close()


# --- contract: MemoryHistory and RedisHistory behave the same -------------------------


class TestHistoryContract:
    async def test_unknown_channel(self, harness: Harness) -> None:
        pos = await harness.store.position("c")
        assert pos.seq == 0 and isinstance(pos.epoch, str) and len(pos.epoch) == 8
        assert await harness.store.position("c") == pos
        assert await harness.store.latest("c") is None
        assert await harness.store.range("c", 0) == []

    async def test_first_append_keeps_the_epoch_a_reader_saw(self, harness: Harness) -> None:
        # A subscriber to an empty channel gets this epoch; the first publication must not change it.
        epoch = (await harness.store.position("c")).epoch
        pub = await harness.store.append("c", '{"a":1}', size=10, ttl=60)
        assert pub == Publication(1, epoch, '{"a":1}')

    async def test_sequence_and_position(self, harness: Harness) -> None:
        published = [await harness.store.append("c", f"[{i}]", size=100, ttl=60) for i in range(1, 21)]
        assert [p.seq for p in published] == list(range(1, 21))
        assert len({p.epoch for p in published}) == 1
        assert await harness.store.position("c") == Position(published[0].epoch, 20)
        assert await harness.store.latest("c") == published[-1]

    async def test_range(self, harness: Harness) -> None:
        published = [await harness.store.append("c", f"[{i}]", size=100, ttl=60) for i in range(1, 8)]
        assert await harness.store.range("c", 0) == published
        assert await harness.store.range("c", 3) == published[3:]
        assert await harness.store.range("c", 3, 5) == published[3:5]
        assert await harness.store.range("c", 7) == []
        assert await harness.store.range("c", 2, 2) == []

    async def test_payload_round_trips_exactly(self, harness: Harness) -> None:
        payloads = ['{"s":"a|b|c"}', '"é😀\\u2028"', "|", "", '{"k":"1|2"}']
        for payload in payloads:
            await harness.store.append("c", payload, size=10, ttl=60)
        assert [p.payload for p in await harness.store.range("c", 0)] == payloads
        assert (await harness.store.latest("c")).payload == '{"k":"1|2"}'  # type: ignore[union-attr]

    async def test_trimming(self, harness: Harness) -> None:
        for i in range(1, 11):
            await harness.store.append("c", str(i), size=4, ttl=60)
        assert [p.seq for p in await harness.store.range("c", 0)] == [7, 8, 9, 10]
        assert (await harness.store.position("c")).seq == 10
        assert (await harness.store.latest("c")).seq == 10  # type: ignore[union-attr]

    async def test_size_one(self, harness: Harness) -> None:
        for i in range(3):
            await harness.store.append("c", str(i), size=1, ttl=60)
        assert [p.payload for p in await harness.store.range("c", 0)] == ["2"]

    async def test_channels_are_independent(self, harness: Harness) -> None:
        await harness.store.append("a", "1", size=10, ttl=60)
        await harness.store.append("a", "2", size=10, ttl=60)
        b = await harness.store.append("b:x.y-z", "3", size=10, ttl=60)
        assert b.seq == 1
        assert [p.payload for p in await harness.store.range("a", 0)] == ["1", "2"]
        assert [p.payload for p in await harness.store.range("b:x.y-z", 0)] == ["3"]

    async def test_flush_starts_a_new_epoch(self, harness: Harness) -> None:
        old = [await harness.store.append("c", str(i), size=10, ttl=60) for i in range(3)][-1]
        harness.flush()
        pos = await harness.store.position("c")
        assert pos.epoch != old.epoch and pos.seq == 0
        assert await harness.store.range("c", 0) == []
        assert await harness.store.latest("c") is None
        again = await harness.store.append("c", "new", size=10, ttl=60)
        assert again == Publication(1, pos.epoch, "new")

    async def test_flush_then_append_without_read_starts_a_new_epoch(self, harness: Harness) -> None:
        old = await harness.store.append("c", "a", size=10, ttl=60)
        await harness.store.append("c", "b", size=10, ttl=60)
        harness.flush()
        new = await harness.store.append("c", "c", size=10, ttl=60)
        assert new.seq == 1 and new.epoch != old.epoch
        assert await harness.store.range("c", 0) == [new]

    async def test_ttl_expiry_starts_a_new_epoch(self, harness: Harness) -> None:
        # Generous margins: the Redis variant runs on real time on a busy machine.
        first = await harness.store.append("c", "a", size=10, ttl=0.4)
        await harness.age(0.05)
        assert await harness.store.position("c") == Position(first.epoch, 1)
        await harness.age(0.4)
        pos = await harness.store.position("c")
        assert pos.epoch != first.epoch and pos.seq == 0
        assert await harness.store.latest("c") is None

    async def test_append_extends_the_ttl(self, harness: Harness) -> None:
        first = await harness.store.append("c", "a", size=10, ttl=0.5)
        await harness.age(0.3)
        await harness.store.append("c", "b", size=10, ttl=0.5)
        await harness.age(0.3)  # 0.6 s after the first append, 0.3 after the last
        assert await harness.store.position("c") == Position(first.epoch, 2)
        assert [p.payload for p in await harness.store.range("c", 0)] == ["a", "b"]
        await harness.age(0.3)
        assert (await harness.store.position("c")).epoch != first.epoch

    async def test_recover_exact_replay(self, harness: Harness) -> None:
        published = [await harness.store.append("c", f"[{i}]", size=50, ttl=60) for i in range(1, 11)]
        epoch = published[0].epoch
        result = await recover(harness.store, "c", Since(epoch, 6))
        assert result.recovered and result.position == Position(epoch, 10)
        assert list(result.missed) == published[6:]

    async def test_recover_up_to_date_and_future(self, harness: Harness) -> None:
        pub = [await harness.store.append("c", "x", size=50, ttl=60) for _ in range(3)][-1]
        up_to_date = await recover(harness.store, "c", Since(pub.epoch, 3))
        assert up_to_date.recovered and up_to_date.missed == ()
        assert not (await recover(harness.store, "c", Since(pub.epoch, 4))).recovered

    async def test_recover_older_than_retained(self, harness: Harness) -> None:
        pub = [await harness.store.append("c", "x", size=5, ttl=60) for _ in range(12)][-1]
        assert not (await recover(harness.store, "c", Since(pub.epoch, 6))).recovered
        recovered = await recover(harness.store, "c", Since(pub.epoch, 7))
        assert recovered.recovered and [p.seq for p in recovered.missed] == [8, 9, 10, 11, 12]

    async def test_recover_after_epoch_change(self, harness: Harness) -> None:
        old = [await harness.store.append("c", "x", size=50, ttl=60) for _ in range(5)][-1]
        harness.flush()
        for _ in range(7):
            await harness.store.append("c", "y", size=50, ttl=60)
        result = await recover(harness.store, "c", Since(old.epoch, 2))
        assert not result.recovered and result.position.epoch != old.epoch and result.position.seq == 7

    async def test_recover_unknown_epoch_string(self, harness: Harness) -> None:
        await harness.store.append("c", "x", size=50, ttl=60)
        assert not (await recover(harness.store, "c", Since("zzzzzzzz", 0))).recovered

    async def test_ping(self, harness: Harness) -> None:
        assert await harness.store.ping() is True

    async def test_size_zero_keeps_no_history(self, harness: Harness, request: pytest.FixtureRequest) -> None:
        for i in range(5):
            await harness.store.append("c", str(i), size=0, ttl=60)
        assert (await harness.store.position("c")).seq == 5
        assert await harness.store.range("c", 0) == []
        assert await harness.store.latest("c") is None


# --- RedisHistory specifics -----------------------------------------------------------


class TestRedisHistory:
    async def test_keys_ttl_and_layout(
        self, redis_history: RedisHistory, redis_keys: redis_sync.Redis, key_prefix: str
    ) -> None:
        pub = await redis_history.append("prices:BTC", '{"p":1}', size=10, ttl=30)
        e, s, log = _keys(key_prefix, "prices:BTC")
        assert redis_keys.get(e) == pub.epoch
        assert redis_keys.get(s) == "1"
        assert redis_keys.lrange(log, 0, -1) == ['1|{"p":1}']
        for key in (e, s, log):
            assert 29_000 < redis_keys.pttl(key) <= 30_000

    async def test_read_created_epoch_has_a_ttl(
        self, redis_history: RedisHistory, redis_keys: redis_sync.Redis, key_prefix: str
    ) -> None:
        await redis_history.position("quiet")
        e, s, log = _keys(key_prefix, "quiet")
        assert 3_500_000 < redis_keys.pttl(e) <= 3_600_000
        # The counter exists from the start (at 0, same TTL): a missing counter later
        # means it was lost, which starts a new epoch.
        assert redis_keys.get(s) == "0" and 3_500_000 < redis_keys.pttl(s) <= 3_600_000
        assert redis_keys.exists(log) == 0

    async def test_lost_epoch_key_starts_a_new_epoch(
        self, redis_history: RedisHistory, redis_keys: redis_sync.Redis, key_prefix: str
    ) -> None:
        # Deleting only the epoch (e.g. it expired first) must not reuse old seqs under a new epoch.
        old = [await redis_history.append("c", str(i), size=10, ttl=60) for i in range(3)][-1]
        redis_keys.delete(_keys(key_prefix, "c")[0])
        new = await redis_history.append("c", "fresh", size=10, ttl=60)
        assert new.epoch != old.epoch and new.seq == 1
        assert await redis_history.range("c", 0) == [new]

    async def test_lost_log_key_means_no_recovery(
        self, redis_history: RedisHistory, redis_keys: redis_sync.Redis, key_prefix: str
    ) -> None:
        last = [await redis_history.append("c", str(i), size=10, ttl=60) for i in range(4)][-1]
        redis_keys.delete(_keys(key_prefix, "c")[2])
        assert not (await recover(redis_history, "c", Since(last.epoch, 2))).recovered
        assert await redis_history.latest("c") is None

    async def test_lost_seq_key_never_reuses_a_seq_in_the_same_epoch(
        self, redis_history: RedisHistory, redis_keys: redis_sync.Redis, key_prefix: str
    ) -> None:
        old = [await redis_history.append("c", str(i), size=10, ttl=60) for i in range(5)][-1]
        redis_keys.delete(_keys(key_prefix, "c")[1])
        new = await redis_history.append("c", "after eviction", size=10, ttl=60)
        assert new.epoch != old.epoch or new.seq == old.seq + 1

    @pytest.mark.parametrize("n", [2, 50, 100])
    async def test_concurrent_appends_on_one_loop(self, redis_history: RedisHistory, n: int) -> None:
        results = await asyncio.gather(
            *(redis_history.append("c", f'{{"i":{i}}}', size=1000, ttl=60) for i in range(n))
        )
        assert sorted(p.seq for p in results) == list(range(1, n + 1))
        assert len({p.epoch for p in results}) == 1
        logged = await redis_history.range("c", 0)
        assert [p.seq for p in logged] == list(range(1, n + 1))
        # Each publication is logged under the seq it was given.
        by_seq = {p.seq: p.payload for p in results}
        assert all(by_seq[p.seq] == p.payload for p in logged)

    async def test_many_concurrent_appends_with_a_blocking_pool(
        self, redis_url: str, key_prefix: str, redis_keys: redis_sync.Redis
    ) -> None:
        # An injected client whose pool waits for a free connection: 300 tasks, 20 connections.
        pool = aioredis.BlockingConnectionPool.from_url(redis_url, decode_responses=True, max_connections=20)
        store = RedisHistory(redis_url, prefix=key_prefix, client=aioredis.Redis(connection_pool=pool))
        try:
            n = 300
            results = await asyncio.gather(*(store.append("c", str(i), size=n, ttl=60) for i in range(n)))
            assert sorted(p.seq for p in results) == list(range(1, n + 1))
            assert len({p.epoch for p in results}) == 1
            assert [p.seq for p in await store.range("c", 0)] == list(range(1, n + 1))
        finally:
            await store.close()
            await pool.aclose()

    async def test_more_concurrent_calls_than_the_default_pool(self, redis_history: RedisHistory) -> None:
        results = await asyncio.gather(*(redis_history.append("c", str(i), size=500, ttl=60) for i in range(300)))
        assert sorted(p.seq for p in results) == list(range(1, 301))

    async def test_concurrent_appends_trim_to_size(self, redis_history: RedisHistory) -> None:
        for _ in range(4):
            await asyncio.gather(*(redis_history.append("c", "x", size=25, ttl=60) for _ in range(50)))
        assert [p.seq for p in await redis_history.range("c", 0)] == list(range(176, 201))

    def test_concurrent_appends_from_threads(
        self, redis_url: str, key_prefix: str, redis_keys: redis_sync.Redis
    ) -> None:
        threads, per_thread = 4, 60
        results: list[list[Publication]] = [[] for _ in range(threads)]
        errors: list[BaseException] = []
        barrier = threading.Barrier(threads)

        def worker(index: int) -> None:
            async def main() -> None:
                store = RedisHistory(redis_url, prefix=key_prefix)  # own loop, own client
                try:
                    await store.ping()
                    barrier.wait(timeout=5)
                    for i in range(per_thread):
                        results[index].append(await store.append("c", f"{index}:{i}", size=1000, ttl=60))
                finally:
                    await store.close()

            try:
                asyncio.run(main())
            except BaseException as exc:  # reported below
                errors.append(exc)

        pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(timeout=15)
        assert not errors
        everything = [p for batch in results for p in batch]
        assert sorted(p.seq for p in everything) == list(range(1, threads * per_thread + 1))
        assert len({p.epoch for p in everything}) == 1
        for batch in results:  # each thread sees its own appends in increasing order
            assert [p.seq for p in batch] == sorted(p.seq for p in batch)
        logged = redis_keys.lrange(_keys(key_prefix, "c")[2], 0, -1)
        assert [int(entry.split("|", 1)[0]) for entry in logged] == list(range(1, threads * per_thread + 1))

    async def test_ping_fails_when_redis_is_unreachable(self) -> None:
        store = RedisHistory("redis://127.0.0.1:1/0", prefix="unused")
        try:
            with pytest.raises(Exception, match=r"(?i)connect"):
                await store.ping()
        finally:
            await store.close()

    async def test_recover_is_not_fooled_by_a_flush_between_reads(
        self, redis_url: str, key_prefix: str, redis_keys: redis_sync.Redis
    ) -> None:
        class FlushedMidway(RedisHistory):
            """Another process flushes Redis and publishes while recover() is between its reads."""

            async def range(self, channel: str, after_seq: int, upto_seq: int | None = None) -> list[Publication]:
                for key in redis_keys.scan_iter(f"{key_prefix}:*"):
                    redis_keys.delete(key)
                for i in range(20):
                    await self.append(channel, f'"new {i}"', size=100, ttl=60)
                return await super().range(channel, after_seq, upto_seq)

        store = FlushedMidway(redis_url, prefix=key_prefix)
        try:
            old = [await store.append("c", f'"old {i}"', size=100, ttl=60) for i in range(10)][-1]
            result = await recover(store, "c", Since(old.epoch, 5))
            replayed_epochs = {p.epoch for p in result.missed}
            assert not result.recovered or replayed_epochs == {old.epoch}
        finally:
            await store.close()
