"""The hub: one group membership per process, gap-free seq, recovery, conflation, slow consumers.

Each test runs against the in-memory layer/history and against real Redis.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from typing import Any

import pytest

from realtime_project.gateway import runtime
from realtime_project.gateway.api import apublish, apublish_many, publish
from tests.support.ws import Client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def layer(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        request.getfixturevalue("redis_settings")
    return str(request.param)


async def subscriber(channel: str = "prices:BTC", **extra: Any) -> tuple[Client, dict[str, Any]]:
    client = Client()
    assert await client.connect()
    reply = await client.request({"type": "subscribe", "id": 1, "channel": channel, **extra})
    assert reply["type"] == "subscribed", reply
    return client, reply


async def drain_messages(client: Client, count: int, timeout: float = 5) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while len(out) < count:
        try:
            frame = await client.recv(timeout)
        except TimeoutError:
            raise AssertionError(
                f"got {len(out)} of {count} messages; last seqs {[m['seq'] for m in out[-5:]]}"
            ) from None
        if frame["type"] == "message":
            out.append(frame)
    return out


async def test_one_group_membership_per_process(layer: str) -> None:
    clients = [await subscriber() for _ in range(5)]
    hub = runtime.current_hub()
    assert hub is not None
    # Embedded mode joins the batch group at start; with Redis a batch is one PUBLISH per channel.
    assert sorted(hub._groups) == (["rt.batch", "rt.prices.BTC"] if layer == "memory" else ["rt.prices.BTC"])
    assert hub._groups["rt.prices.BTC"] == 1
    layer_obj = hub.layer
    if layer == "memory":
        assert list(layer_obj.groups["rt.prices.BTC"]) == [hub.channel_name]
    else:
        assert hub.intake is not None and len(hub.intake.channels) == 1  # one Redis subscription
    await apublish("prices:BTC", {"p": 1})
    for client, _ in clients:
        assert (await client.recv())["data"] == {"p": 1}
    for client, _ in clients[:-1]:
        await client.close()
    assert "rt.prices.BTC" in hub._groups
    await clients[-1][0].close()
    await asyncio.sleep(0.05)
    assert "rt.prices.BTC" not in hub._groups  # last local unsubscribe leaves the group


async def test_concurrent_publishers_are_gap_free_in_order_without_duplicates(layer: str) -> None:
    client, reply = await subscriber()
    start = reply["seq"]
    per_thread, threads = 60, 4

    def worker(n: int) -> None:
        for i in range(per_thread):
            publish("prices:BTC", {"w": n, "i": i})

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    await asyncio.gather(*(apublish("prices:BTC", {"w": "async", "i": i}) for i in range(per_thread)))
    for t in pool:
        await asyncio.to_thread(t.join)
    total = per_thread * (threads + 1)
    messages = await drain_messages(client, total)
    seqs = [m["seq"] for m in messages]
    assert seqs == list(range(start + 1, start + total + 1))
    # Each publisher's own messages arrive in the order it published them.
    for n in range(threads):
        mine = [m["data"]["i"] for m in messages if m["data"]["w"] == n]
        assert mine == list(range(per_thread))
    assert await client.nothing()
    await client.close()


async def test_gap_from_a_lost_layer_message_is_repaired_from_history(layer: str) -> None:
    client, _reply = await subscriber()
    hub = runtime.current_hub()
    assert hub is not None
    # Simulate the at-most-once layer dropping seq 1: append to history only.
    history = runtime.get_history()
    lost = await history.append("prices:BTC", '{"lost":true}', size=100, ttl=60)
    await apublish("prices:BTC", {"after": True})
    first, second = await drain_messages(client, 2)
    assert (first["seq"], first["data"]) == (lost.seq, {"lost": True})
    assert (second["seq"], second["data"]) == (lost.seq + 1, {"after": True})
    await client.close()


async def _send_layer_message(pub: Any, payload: str) -> None:
    from channels.layers import get_channel_layer

    await get_channel_layer().group_send(
        "rt.prices.BTC",
        {"type": "hub.message", "channel": "prices:BTC", "seq": pub.seq, "epoch": pub.epoch, "payload": payload},
    )


async def test_stalled_publication_evicted_from_history_still_arrives_in_order(layer: str) -> None:
    """A publisher got its seq, then stalled while more than a history's worth went out."""
    client, reply = await subscriber()
    history = runtime.get_history()
    stalled = await history.append("prices:BTC", '{"stalled":true}', size=100, ttl=60)
    # One batch (one history round trip) evicts it from the history of 100 at once.
    await apublish_many([("prices:BTC", {"i": i}) for i in range(120)])
    assert [p.seq for p in await history.range("prices:BTC", stalled.seq - 1, stalled.seq)] == []
    await asyncio.sleep(0.3)  # several repair rounds find nothing in history
    assert await client.nothing(0.05)  # held, not delivered out of order
    await _send_layer_message(stalled, '{"stalled":true}')
    messages = await drain_messages(client, 121)
    assert [m["seq"] for m in messages] == list(range(reply["seq"] + 1, reply["seq"] + 122))
    assert messages[0]["data"] == {"stalled": True}
    assert [m["data"]["i"] for m in messages[1:]] == list(range(120))
    await client.close()


async def test_publication_lost_beyond_history_is_accepted_after_the_give_up_window(layer: str) -> None:
    from realtime_project.gateway.hub import GAP_GIVE_UP

    client, reply = await subscriber()
    history = runtime.get_history()
    lost = await history.append("prices:BTC", '{"lost":true}', size=100, ttl=60)
    await apublish_many([("prices:BTC", {"i": i}) for i in range(120)])
    # The sequencer holds the gap for GAP_GIVE_UP first (tests/gateway/test_sequencer.py).
    messages = await drain_messages(client, 120, timeout=GAP_GIVE_UP + 3)
    assert [m["seq"] for m in messages] == list(range(lost.seq + 1, lost.seq + 121))
    await apublish("prices:BTC", {"after": True})
    (after,) = await drain_messages(client, 1)
    assert after["seq"] == lost.seq + 121  # the hub is in step again, nothing held
    assert reply["seq"] == lost.seq - 1
    await client.close()


async def test_snapshot_on_subscribe_and_exact_recovery(layer: str) -> None:
    for i in range(3):
        await apublish("prices:ETH", {"i": i})
    client, reply = await subscriber("prices:ETH")
    snap = await client.recv()
    assert snap["snapshot"] is True and snap["data"] == {"i": 2} and snap["seq"] == reply["seq"] == 3
    epoch = reply["epoch"]
    await client.close()
    for i in range(3, 8):
        await apublish("prices:ETH", {"i": i})
    client, reply = await subscriber("prices:ETH", since={"epoch": epoch, "seq": 3})
    assert reply["recovered"] is True and reply["seq"] == 8
    replay = await drain_messages(client, 5)
    assert [m["data"]["i"] for m in replay] == [3, 4, 5, 6, 7]
    assert [m["seq"] for m in replay] == [4, 5, 6, 7, 8]
    assert all("snapshot" not in m for m in replay)
    await apublish("prices:ETH", {"i": 8})
    live = await drain_messages(client, 1)
    assert live[0]["seq"] == 9
    assert await client.nothing()
    await client.close()


@pytest.mark.parametrize(
    "since",
    [
        {"epoch": "stale-epoch", "seq": 2},  # unknown epoch
        {"epoch": None, "seq": 500},  # a seq in the future (epoch filled in below)
        {"epoch": None, "seq": 0},  # older than the retained history (size 100)
    ],
)
async def test_unrecoverable_positions_get_recovered_false_and_snapshot(layer: str, since: dict[str, Any]) -> None:
    first = await apublish("prices:SOL", {"i": 0})
    for i in range(1, 105):
        await apublish("prices:SOL", {"i": i})
    since = {**since, "epoch": since["epoch"] or first.epoch}
    client, reply = await subscriber("prices:SOL", since=since)
    assert reply["recovered"] is False and reply["seq"] == 105
    snap = await client.recv()
    assert snap["snapshot"] is True and snap["data"] == {"i": 104}
    assert await client.nothing()
    await client.close()


async def test_recovery_of_many_messages_is_complete_and_ordered(layer: str) -> None:
    client, reply = await subscriber("prices:ADA")
    await client.close()
    for i in range(90):
        await apublish("prices:ADA", {"i": i})
    client, reply2 = await subscriber("prices:ADA", since={"epoch": reply["epoch"], "seq": reply["seq"]})
    assert reply2["recovered"] is True
    replay = await drain_messages(client, 90)
    assert [m["data"]["i"] for m in replay] == list(range(90))
    await client.close()


async def test_history_flush_changes_epoch(layer: str, redis_url: str) -> None:
    client, _reply = await subscriber("prices:DOT")
    await apublish("prices:DOT", {"i": 0})
    (msg,) = await drain_messages(client, 1)
    history = runtime.get_history()
    if layer == "memory":
        history.flush()  # type: ignore[attr-defined]
    else:
        import redis as redis_sync

        from realtime_project.gateway.conf import gateway_settings

        r = redis_sync.Redis.from_url(redis_url)
        for key in r.scan_iter(f"{gateway_settings().key_prefix}:h:*"):
            r.delete(key)
        r.close()
    pub = await apublish("prices:DOT", {"i": 1})
    (after,) = await drain_messages(client, 1)
    assert after["epoch"] == pub.epoch != msg["epoch"]
    assert after["seq"] == 1 and after["data"] == {"i": 1}
    await client.close()
    client, again = await subscriber("prices:DOT", since={"epoch": msg["epoch"], "seq": msg["seq"]})
    assert again["recovered"] is False and again["epoch"] == pub.epoch
    await client.close()


async def test_conflation_max_rate_sends_newest_at_most_n_per_second(layer: str) -> None:
    fast, _ = await subscriber("prices:XRP")
    slow, reply = await subscriber("prices:XRP", max_rate=5)
    assert reply["max_rate"] == 5
    loop = asyncio.get_running_loop()
    got_slow: list[tuple[float, int]] = []

    async def read_slow() -> None:
        while True:
            frame = await slow.recv(timeout=2)
            if frame["type"] == "message":
                got_slow.append((loop.time(), frame["data"]["i"]))
                if frame["data"]["i"] == 39:
                    return

    reader = asyncio.ensure_future(read_slow())
    start = loop.time()
    for i in range(40):  # 40 values over ~0.8 s
        await apublish("prices:XRP", {"i": i})
        await asyncio.sleep(0.02)
    elapsed = loop.time() - start
    await asyncio.wait_for(reader, 3)
    got_fast = await drain_messages(fast, 40)
    assert [m["data"]["i"] for m in got_fast] == list(range(40))
    values = [v for _, v in got_slow]
    assert values[-1] == 39, "the newest value is never lost"
    assert values == sorted(values)
    assert len(values) <= elapsed * 5 + 2, (len(values), elapsed)
    assert len(values) >= 3
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(got_slow)]
    assert all(g >= 0.18 for g in gaps), gaps  # 1/max_rate = 0.2 s, minus timer jitter
    await fast.close()
    await slow.close()


async def test_max_rate_is_for_snapshot_channels_only(layer: str) -> None:
    from channels.db import database_sync_to_async
    from django.contrib.auth import get_user_model

    user = await database_sync_to_async(get_user_model().objects.create_user)("u1", password="pw")
    client = Client(user=user)
    assert await client.connect()
    reply = await client.request({"type": "subscribe", "id": 1, "channel": "notifications", "max_rate": 2})
    assert reply["code"] == "bad_request" and "snapshot" in reply["message"]
    await client.close()


async def test_slow_consumer_is_closed_and_others_unaffected(layer: str, settings: Any) -> None:
    settings.REALTIME = {**settings.REALTIME, "SEND_QUEUE_SIZE": 20}
    healthy, _ = await subscriber("prices:LTC")
    _stuck, _ = await subscriber("prices:LTC")
    hub = runtime.current_hub()
    assert hub is not None
    stuck_conn = max(hub.connections, key=lambda c: int(c.id[1:]))
    blocked = asyncio.Event()

    async def never(_: str) -> None:
        await blocked.wait()

    stuck_conn.send_text = never  # the client stopped reading: writes never complete
    for i in range(60):
        await apublish("prices:LTC", {"i": i})
    got = await drain_messages(healthy, 60)
    assert [m["data"]["i"] for m in got] == list(range(60))
    assert stuck_conn.close_code == 4409
    blocked.set()
    await healthy.close()


async def test_subscribe_while_the_last_group_discard_is_in_flight_keeps_delivering(layer: str) -> None:
    leaving, _ = await subscriber("prices:BNB")
    hub = runtime.current_hub()
    assert hub is not None
    original = hub.layer.group_discard

    async def slow_discard(group: str, channel: str) -> None:
        await asyncio.sleep(0.2)  # lands after the other client's group_add below
        await original(group, channel)

    hub.layer.group_discard = slow_discard
    try:
        # The last local subscriber leaves (the discard is in flight) and another
        # connection subscribes meanwhile.
        await leaving.send({"type": "unsubscribe", "id": 2, "channel": "prices:BNB"})
        await asyncio.sleep(0.05)
        joining, _ = await subscriber("prices:BNB")
        await asyncio.sleep(0.4)  # the slow discard has completed by now
    finally:
        hub.layer.group_discard = original
    await apublish("prices:BNB", {"still": "delivered"})
    (message,) = await drain_messages(joining, 1)
    assert message["data"] == {"still": "delivered"}
    await leaving.close()
    await joining.close()


async def test_reconnect_storm_recovers_from_memory_with_one_history_read_per_channel(layer: str) -> None:
    keeper, first = await subscriber("prices:AVAX")  # keeps this process joined
    leavers = [await subscriber("prices:AVAX") for _ in range(20)]
    for client, _ in leavers:
        await client.close()
    for i in range(10):
        await apublish("prices:AVAX", {"i": i})
    hub = runtime.current_hub()
    assert hub is not None
    reads: list[str] = []
    original_range, original_position = hub.history.range, hub.history.position

    async def counting_range(*args: Any, **kwargs: Any) -> Any:
        reads.append("range")
        return await original_range(*args, **kwargs)

    async def counting_position(*args: Any, **kwargs: Any) -> Any:
        reads.append("position")
        return await original_position(*args, **kwargs)

    hub.history.range, hub.history.position = counting_range, counting_position  # type: ignore[method-assign]
    try:
        since = {"epoch": first["epoch"], "seq": first["seq"]}
        back = await asyncio.gather(*(subscriber("prices:AVAX", since=since) for _ in range(20)))
        for client, reply in back:
            assert reply["recovered"] is True
            replay = await drain_messages(client, 10)
            assert [m["data"]["i"] for m in replay] == list(range(10))
            await client.close()
    finally:
        hub.history.range, hub.history.position = original_range, original_position  # type: ignore[method-assign]
    assert reads == []  # served from the hub's ring: no history round trip at all
    await keeper.close()


async def test_snapshot_hook_first_namespace_gets_the_apps_snapshot_not_the_last_message(layer: str) -> None:
    from realtime_project.gateway.namespaces import Namespace, Recovery, namespaces

    async def full_state(principal: Any, channel: Any) -> dict[str, Any]:
        return {"full": True, "channel": channel.name}

    namespaces.register(
        Namespace(
            name="tbatch",
            public=True,
            recovery=Recovery.SNAPSHOT,
            snapshot=full_state,
            snapshot_hook_first=lambda channel: channel.key is None,
        )
    )
    try:
        pub = await apublish("tbatch", {"partial": True})
        client, reply = await subscriber("tbatch")
        snap = await client.recv()
        assert snap["snapshot"] is True and snap["data"] == {"full": True, "channel": "tbatch"}
        assert snap["seq"] == reply["seq"] == pub.seq
        await apublish("tbatch", {"partial": 2})
        (live,) = await drain_messages(client, 1)
        assert live["data"] == {"partial": 2}
        await client.close()
    finally:
        namespaces._namespaces.pop("tbatch", None)


async def test_publish_many_is_one_batch_in_order_and_mixes_with_single_publishes(layer: str) -> None:
    from realtime_project.gateway.api import apublish_many

    btc, _ = await subscriber("prices:BTC")
    eth, _ = await subscriber("prices:ETH")
    sent: list[str] = []
    hub = runtime.current_hub()
    assert hub is not None
    original = hub.layer.group_send
    store = runtime.get_history()
    original_publish = getattr(store, "publish", None)

    async def counting_group_send(group: str, message: dict[str, Any]) -> None:
        sent.append(group)
        await original(group, message)

    async def counting_publish(items: list[Any], **kwargs: Any) -> Any:
        sent.append(f"script:{len(items)}")
        assert original_publish is not None
        return await original_publish(items, **kwargs)

    hub.layer.group_send = counting_group_send
    if original_publish is not None:
        store.publish = counting_publish  # type: ignore[attr-defined]
    try:
        await apublish("prices:BTC", {"n": 0})
        pubs = await apublish_many(
            [("prices:BTC", {"n": 1}), ("prices:ETH", {"n": 1}), ("prices:BTC", {"n": 2}), ("prices:XRP", {"n": 1})]
        )
        await apublish("prices:BTC", {"n": 3})
    finally:
        hub.layer.group_send = original
        if original_publish is not None:
            store.publish = original_publish  # type: ignore[attr-defined]
    assert [p.seq for p in pubs] == [2, 1, 3, 1]
    if layer == "memory":
        assert sent == ["rt.prices.BTC", "rt.batch", "rt.prices.BTC"]  # one layer message for the batch
    else:
        assert sent == ["script:1", "script:4", "script:1"]  # one round trip per call, batch included
    got = await drain_messages(btc, 4)
    assert [(m["seq"], m["data"]["n"]) for m in got] == [(1, 0), (2, 1), (3, 2), (4, 3)]
    (only,) = await drain_messages(eth, 1)
    assert (only["seq"], only["data"]) == (1, {"n": 1})
    assert await eth.nothing()
    await btc.close()
    await eth.close()


async def test_publish_many_validates_everything_before_sending(layer: str) -> None:
    from realtime_project.gateway.api import apublish_many

    client, reply = await subscriber("prices:BTC")
    with pytest.raises(TypeError):
        await apublish_many([("prices:BTC", {"ok": 1}), ("prices:ETH", {"bad": object()})])
    with pytest.raises(ValueError):
        await apublish_many([("prices:BTC", {"ok": 1}), ("nosuch:X", {})])
    assert await client.nothing()
    assert (await apublish("prices:BTC", {"ok": True})).seq == reply["seq"] + 1  # no seq was used
    await client.close()


async def test_cold_subscribes_share_one_snapshot_of_the_app(layer: str) -> None:
    """Issue #10, cold subscribes: concurrent subscribers to a channel without history
    cost one call of the app's snapshot hook (one database round trip), not one each."""
    from realtime_project.gateway.namespaces import Namespace, Recovery, namespaces

    calls: list[str] = []
    gate = asyncio.Event()

    async def cold_state(principal: Any, channel: Any) -> dict[str, Any]:
        calls.append(channel.name)
        await gate.wait()
        return {"state": "cold"}

    namespaces.register(Namespace(name="tcold", public=True, recovery=Recovery.SNAPSHOT, snapshot=cold_state))
    try:
        clients = [Client() for _ in range(20)]
        for client in clients:
            assert await client.connect()
        for n, client in enumerate(clients):
            await client.send({"type": "subscribe", "id": n, "channel": "tcold"})
        while not calls:
            await asyncio.sleep(0)
        gate.set()
        for client in clients:
            reply = await client.recv()
            assert reply["type"] == "subscribed" and reply["seq"] == 0, reply
            snap = await client.recv()
            assert snap["snapshot"] is True and snap["data"] == {"state": "cold"}
        assert calls == ["tcold"]
        # A publication moves the channel: later subscribers start from it, no hook call.
        await apublish("tcold", {"state": "warm"})
        for client in clients:  # applied by the hub (through Redis, with that layer) before a late subscribe
            assert (await client.recv())["data"] == {"state": "warm"}
        late, _ = await subscriber("tcold")
        assert (await late.recv())["data"] == {"state": "warm"}
        assert calls == ["tcold"]
        for client in [*clients, late]:
            await client.close()
    finally:
        namespaces._namespaces.pop("tcold", None)


async def test_publications_dropped_on_purpose_across_channels_are_repaired_in_order(layer: str) -> None:
    """Issue #10: pub/sub may drop. A third of the publications of five channels are stored
    without being sent (what a dropped pub/sub message looks like to a gateway), the rest
    go out singly and in batches: every subscriber gets every seq once, in order, with its
    payload. (The last publication of a channel is always sent: a drop at the very end is
    found by the next publication, or by the resync after the pub/sub connection drops,
    which is when Redis drops pub/sub messages: `Hub._intake_up`.)"""
    import random

    from realtime_project.gateway.api import apublish_many

    channels = [f"prices:D{i}" for i in range(5)]
    clients = [(await subscriber(ch))[0] for ch in channels]
    history = runtime.get_history()
    rng = random.Random(10)
    plan = [(channels[k % 5], k) for k in range(150)]
    last = {ch: max(k for c, k in plan if c == ch) for ch in channels}
    dropped = 0
    batch: list[tuple[str, dict[str, int]]] = []
    for ch, k in plan:
        if k != last[ch] and rng.random() < 0.35:
            if batch:
                await apublish_many(batch)
                batch = []
            await history.append(ch, f'{{"k":{k}}}', size=1000, ttl=60)
            dropped += 1
        elif rng.random() < 0.5:
            batch.append((ch, {"k": k}))
        else:
            if batch:
                await apublish_many(batch)
                batch = []
            await apublish(ch, {"k": k})
    if batch:
        await apublish_many(batch)
    assert dropped > 30
    for ch, client in zip(channels, clients, strict=True):
        expected = [k for c, k in plan if c == ch]
        got = await drain_messages(client, len(expected))
        assert [m["seq"] for m in got] == list(range(1, len(expected) + 1)), ch
        assert [m["data"]["k"] for m in got] == expected, ch
        assert await client.nothing()
        await client.close()
