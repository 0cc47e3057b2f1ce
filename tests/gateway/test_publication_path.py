"""The publication path against real Redis: one atomic round trip per batch, exactly-once
from the caller's view (idempotency keys, lost replies), fencing tokens (issue #10, fault B)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import msgpack
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from realtime_project import runtime as project_runtime
from realtime_project.gateway import runtime
from realtime_project.gateway.api import FencedOut, apublish, apublish_many
from tests.support.tcp_proxy import CuttingProxy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


@pytest_asyncio.fixture
async def watcher(redis_settings: Any, redis_url: str, key_prefix: str) -> AsyncIterator[Any]:
    """What the gateways would receive: the Channels pub/sub group channels of prices:*."""
    client = aioredis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.psubscribe(f"{key_prefix}__group__rt.prices.*")
    confirmation = await pubsub.get_message(timeout=2)
    assert confirmation is not None and confirmation["type"] == "psubscribe"
    yield pubsub
    await pubsub.aclose()
    await client.aclose()


async def received(pubsub: Any, wait: float = 0.3) -> list[dict[str, Any]]:
    out = []
    while (message := await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)) is not None:
        out.append(msgpack.unpackb(message["data"], raw=False))
    return out


async def position(channel: str) -> int:
    return (await runtime.get_history().position(channel)).seq


async def test_one_script_call_stores_and_delivers_a_batch_in_order(watcher: Any) -> None:
    pubs = await apublish_many([("prices:BTC", {"n": 1}), ("prices:ETH", {"n": 1}), ("prices:BTC", {"n": 2})])
    assert [(p.seq, p.payload) for p in pubs] == [(1, '{"n":1}'), (1, '{"n":1}'), (2, '{"n":2}')]
    got = await received(watcher)
    assert [(m["type"], m["channel"], m["seq"], m["payload"]) for m in got] == [
        ("hub.message", "prices:BTC", 1, '{"n":1}'),
        ("hub.message", "prices:ETH", 1, '{"n":1}'),
        ("hub.message", "prices:BTC", 2, '{"n":2}'),
    ]
    assert {m["epoch"] for m in got if m["channel"] == "prices:BTC"} == {pubs[0].epoch}


async def test_a_retry_with_the_same_idempotency_key_never_yields_two_seqs(watcher: Any) -> None:
    first = await apublish("prices:BTC", {"order": 7}, idempotency_key="order-7")
    again = await apublish("prices:BTC", {"order": 7}, idempotency_key="order-7")
    assert again == first and first.seq == 1
    assert await position("prices:BTC") == 1
    assert [m["seq"] for m in await received(watcher)] == [1]
    other = await apublish("prices:BTC", {"order": 8}, idempotency_key="order-8")
    assert other.seq == 2


async def test_a_publish_whose_connection_dies_mid_call_is_stored_and_sent_once(
    redis_settings: Any, redis_url: str, watcher: Any
) -> None:
    """Fault B: the script ran but its reply was lost with the connection. The API retries
    with the same key: the caller gets the one seq it got, no orphan seq, no duplicate."""
    proxy = CuttingProxy(urlsplit(redis_url).port or 6379)
    await proxy.start()
    redis_settings.REALTIME = {**redis_settings.REALTIME, "HISTORY_REDIS_URL": proxy.url}
    project_runtime.reset()
    try:
        await apublish("prices:BTC", {"n": 1})  # warm: the script is loaded, the pool has a connection
        proxy.cut_next = b"EVALSHA"
        pub = await apublish("prices:BTC", {"n": 2})
        assert proxy.cuts == 1
        assert pub.seq == 2
        assert await position("prices:BTC") == 2
        got = await received(watcher)
        assert [(m["seq"], m["payload"]) for m in got] == [(1, '{"n":1}'), (2, '{"n":2}')]
        # A batch too: every item once.
        proxy.cut_next = b"EVALSHA"
        pubs = await apublish_many([("prices:BTC", {"n": 3}), ("prices:ETH", {"n": 1})])
        assert [p.seq for p in pubs] == [3, 1] and proxy.cuts == 2
        assert [(m["channel"], m["seq"]) for m in await received(watcher)] == [("prices:BTC", 3), ("prices:ETH", 1)]
    finally:
        await runtime.get_history().close()  # type: ignore[attr-defined]
        await proxy.stop()


async def test_a_stale_fencing_token_refuses_the_whole_batch(redis_url: str, key_prefix: str, watcher: Any) -> None:
    lease = f"{key_prefix}:lease:feeds"
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.set(lease, "token-2")
        with pytest.raises(FencedOut, match="token-1"):
            await apublish_many([("prices:BTC", {"old": 1}), ("prices:ETH", {"old": 1})], fence=(lease, "token-1"))
        with pytest.raises(FencedOut):
            await apublish("prices:BTC", {"old": 2}, fence=(f"{key_prefix}:lease:none", "token-1"))
        assert await position("prices:BTC") == 0 and await position("prices:ETH") == 0
        assert await received(watcher) == []
        pub = await apublish("prices:BTC", {"new": 1}, fence=(lease, "token-2"))
        assert pub.seq == 1
        assert [m["seq"] for m in await received(watcher)] == [1]
    finally:
        await client.aclose()


async def test_fencing_needs_redis() -> None:
    with pytest.raises(ValueError, match="Redis"):
        await apublish("prices:BTC", {}, fence=("lease", "t"))
    await asyncio.sleep(0)
