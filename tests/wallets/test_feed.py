"""Pushed heads on a real anvil through a misbehaving WebSocket proxy: a scan per head,
backfill after reconnects, polling while the socket is down, and every bad-input case.

Nothing here asserts a duration: the tests wait for a condition (with a generous limit
for a busy machine) and then assert exact rows, counters and triggers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from web3 import Web3

from realtime_project.gateway.runtime import memory_history
from tests.wallets.conftest import link
from tests.wallets.feedsupport import Node, connected, in_thread, register, rows, until
from tests.wallets.nodes import FaultyRpc
from tests.wallets.wsproxy import WsProxy, is_notification
from wallets.feedstate import feed_state
from wallets.models import ChainCursor, WalletActivity
from wallets.tasks import scan_due_chains

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.evm]


async def linked(
    anvil: Any, user: Any, *, rpc_url: str, ws_url: str, poll_interval: float = 3600.0
) -> tuple[Node, str]:
    """anvil registered as chain 31337 (heads over `ws_url`), its account 1 linked by `user`."""
    node = Node(anvil.url)
    await in_thread(register, node, rpc_url=rpc_url, ws_url=ws_url, poll_interval=poll_interval)
    await in_thread(link, user, node.accounts[1])
    return node, node.accounts[1]


@pytest_asyncio.fixture
async def proxy(anvil: Any) -> AsyncIterator[WsProxy]:
    p = await WsProxy(anvil.url.replace("http://", "ws://")).start()
    yield p
    await p.stop()


async def test_each_pushed_head_is_scanned_at_once_and_beat_skips_the_chain(
    anvil: Any, proxy: WsProxy, start: Any, user: Any
) -> None:
    node, a1 = await linked(anvil, user, rpc_url=anvil.url, ws_url=proxy.url)
    watcher = await start()
    await connected(watcher)

    sent = [await in_thread(node.pay, 0, a1, 10 + i) for i in range(3)]  # automine: a block each

    got = await until(lambda: len(rows(a1)) == 3 and rows(a1), "three native transfers")
    assert [r[0] for r in got] == sent
    # The poll interval is an hour: only pushed heads (and the connect backfill) scanned.
    assert watcher.stats.triggers.get("head", 0) >= 3 and "poll" not in watcher.stats.triggers
    assert watcher.mode == "push"
    state = await in_thread(feed_state, chain_id=31337)
    assert state is not None and state["mode"] == "push" and state["health"]["ws"] is True
    assert await in_thread(scan_due_chains) == []  # the feed process serves it: beat does not
    cursor = await in_thread(ChainCursor.objects.get, chain__chain_id=31337)
    assert cursor.block_number == node.head


async def test_a_dropped_socket_is_reconnected_and_backfilled_from_the_cursor(
    anvil: Any, proxy: WsProxy, start: Any, user: Any
) -> None:
    node, a1 = await linked(anvil, user, rpc_url=anvil.url, ws_url=proxy.url)
    watcher = await start(backoff_base=0.05, backoff_cap=0.2)
    await connected(watcher)
    first = await in_thread(node.pay, 0, a1, 1)
    await until(lambda: len(rows(a1)) == 1, "the first transfer")

    proxy.refuse = True
    await proxy.drop()  # mid-subscription: no close frame
    # The drop itself asks for a scan: let it finish before the blocks it must not see.
    await until(lambda: watcher.mode == "poll" and not watcher.busy, "the watcher to notice the drop")
    missed = [await in_thread(node.pay, 0, a1, 2 + i) for i in range(2)]
    # No heads and a poll interval of an hour: nothing scans these blocks until reconnected.
    proxy.refuse = False

    got = await until(lambda: len(rows(a1)) == 3 and rows(a1), "the backfill after the reconnect")
    assert [r[0] for r in got] == [first, *missed]  # each exactly once
    assert watcher.stream is not None and watcher.stream.reconnects >= 1 and proxy.connections >= 2
    assert watcher.stats.triggers["connected"] >= 2 and watcher.stats.triggers["disconnected"] >= 1
    assert watcher.stream.health()["errors"]["connection"] >= 1


async def test_http_polling_takes_over_while_the_socket_is_down(anvil: Any, proxy: WsProxy, start: Any,
                                                                user: Any) -> None:  # fmt: skip
    node, a1 = await linked(anvil, user, rpc_url=anvil.url, ws_url=proxy.url, poll_interval=0.2)
    watcher = await start(backoff_base=30.0, backoff_cap=30.0)  # stays down for the test
    await connected(watcher)
    proxy.refuse = True
    await proxy.drop()
    await until(lambda: watcher.mode == "poll" and not watcher.busy, "polling mode")
    sent = await in_thread(node.pay, 0, a1, 5)
    got = await until(lambda: rows(a1), "the transfer found by polling")
    assert [r[0] for r in got] == [sent]
    assert watcher.stats.triggers.get("poll", 0) >= 1
    assert watcher.health()["ok"] is False and watcher.health()["stream"]["connected"] is False
    # The watcher writes its mark on its thread just after it counts the scan.
    state = await until(lambda: (s := feed_state(chain_id=31337)) and s["mode"] == "poll" and s, "the poll mark")
    assert state is not None and state["mode"] == "poll"


async def test_heads_twice_skipped_or_out_of_order_lose_and_double_nothing(
    anvil: Any, proxy: WsProxy, start: Any, user: Any
) -> None:
    node, a1 = await linked(anvil, user, rpc_url=anvil.url, ws_url=proxy.url)
    held: list[Any] = []
    count = [0]

    def rewrite(message: dict[str, Any], frame: Any) -> list[Any]:
        if not is_notification(message, "head"):
            return [frame]
        count[0] += 1
        if count[0] % 3 == 1:
            held.append(frame)  # held back: sent after the next head (out of order)
            return []
        if count[0] % 3 == 2:
            return [frame, frame, *held[-1:]]  # twice, then the older head
        return []  # skipped height

    watcher = await start()
    await connected(watcher)
    proxy.rewrite = rewrite
    sent = [await in_thread(node.pay, 0, a1, 100 + i) for i in range(6)]
    proxy.rewrite = None
    sent.append(await in_thread(node.pay, 0, a1, 200))  # a plain head ends the sequence

    got = await until(lambda: len(rows(a1)) == 7 and rows(a1), "every transfer")
    assert [r[0] for r in got] == sent
    assert await in_thread(lambda: WalletActivity.objects.filter(address=a1, kind="transaction").count()) == 7
    cursor = await in_thread(ChainCursor.objects.get, chain__chain_id=31337)
    assert cursor.block_number == node.head


async def test_a_head_the_http_node_does_not_serve_yet_is_retried(anvil: Any, proxy: WsProxy, start: Any,
                                                                  user: Any) -> None:  # fmt: skip
    node = Node(anvil.url)
    a1 = node.accounts[1]
    lagging = FaultyRpc(anvil.url)
    try:
        await in_thread(register, node, rpc_url=lagging.url, ws_url=proxy.url)
        await in_thread(link, user, a1)
        watcher = await start()
        await connected(watcher)
        lagging.faults.head_offset = -1  # HTTP serves one block less than the socket pushes
        sent = await in_thread(node.pay, 0, a1, 7)
        await until(lambda: watcher.stats.lag_retries >= 1, "a retry of the lagging head")
        assert await in_thread(rows, a1) == []
        lagging.faults.head_offset = 0  # the HTTP node catches up
        got = await until(lambda: rows(a1), "the head scanned once the HTTP node has it")
        assert [r[0] for r in got] == [sent]
    finally:
        lagging.stop()


async def test_garbage_notifications_are_counted_and_change_nothing(
    anvil: Any, proxy: WsProxy, start: Any, user: Any
) -> None:
    node, a1 = await linked(anvil, user, rpc_url=anvil.url, ws_url=proxy.url)
    watcher = await start(backoff_base=0.05, backoff_cap=0.2)
    await connected(watcher)
    stream = watcher.stream
    assert stream is not None
    heads = stream.subscriptions["newHeads"]
    good = {"hash": "0x" + "11" * 32, "parentHash": "0x" + "22" * 32, "number": "0x10"}

    def note(subscription: str, result: Any) -> str:
        params = {"subscription": subscription, "result": result}
        return json.dumps({"jsonrpc": "2.0", "method": "eth_subscription", "params": params})

    before = watcher.stats.scans
    await proxy.inject(note("0xdeadbeef", good))  # an unknown subscription: web3 drops it
    await proxy.inject(note(heads, {**good, "number": "0xzz"}))  # malformed hex
    await proxy.inject(note(heads, {**good, "number": "0x" + "f" * 40}))  # a huge number
    await proxy.inject(note(heads, {**good, "hash": "0x1234"}))  # a short hash
    await proxy.inject(note(heads, "not a header"))
    await until(lambda: stream.errors["bad_notification"] >= 4, "four bad notifications counted")
    assert stream.connects == 1  # the stream went on
    assert stream.last_head is None or stream.last_head.hash != good["hash"]

    await proxy.inject("{not json at all")  # the library's reader dies: reconnect, backfill
    sent = await in_thread(node.pay, 0, a1, 3)
    got = await until(lambda: rows(a1), "the transfer after the garbage")
    assert [r[0] for r in got] == [sent]
    await until(lambda: stream.connected and stream.connects >= 2, "the reconnect")
    assert watcher.stats.scans > before
    assert await in_thread(lambda: WalletActivity.objects.filter(address=a1).exclude(kind="transaction").count()) >= 1


async def test_a_subscription_that_stops_pushing_is_detected_and_reconnected(
    anvil: Any, proxy: WsProxy, start: Any, user: Any
) -> None:
    node, a1 = await linked(anvil, user, rpc_url=anvil.url, ws_url=proxy.url)
    watcher = await start(stall_after=0.3, backoff_base=0.05, backoff_cap=0.2)
    await connected(watcher)
    proxy.rewrite = lambda message, frame: [] if is_notification(message, "head") else [frame]  # heads vanish
    sent = [await in_thread(node.pay, 0, a1, 1 + i) for i in range(4)]
    await until(lambda: watcher.stream is not None and watcher.stream.errors["connection"] >= 1, "the stall")
    proxy.rewrite = None
    got = await until(lambda: len(rows(a1)) == 4 and rows(a1), "the backfill after the stall")
    assert [r[0] for r in got] == sent
    assert "no head past" in (watcher.stream.last_error if watcher.stream else "")


async def test_frames_reach_the_wallet_channel(anvil: Any, proxy: WsProxy, start: Any, user: Any) -> None:
    node, a1 = await linked(anvil, user, rpc_url=anvil.url, ws_url=proxy.url)
    token = await in_thread(node.deploy_token)
    watcher = await start()
    await connected(watcher)
    mint = await in_thread(lambda: Web3.to_hex(token.functions.mint(a1, 42).transact({"from": node.accounts[0]})))

    async def published() -> list[Any]:
        return [json.loads(p.payload) for p in await memory_history().range(f"wallet:{a1}", 0)]

    deadline = asyncio.get_running_loop().time() + 30
    while not any(f["data"].get("hash") == mint for f in await published()):
        assert asyncio.get_running_loop().time() < deadline, "no frame for the mint"
        await asyncio.sleep(0.02)
    frames = await published()
    assert [(f["type"], f["chain"]) for f in frames] == [("transaction", 31337), ("balance", 31337)]
    assert frames[0]["data"]["value_raw"] == "42"


async def test_a_stopped_watcher_finishes_its_scan_and_hands_the_chain_back_to_beat(
    anvil: Any, proxy: WsProxy, start: Any, user: Any
) -> None:
    import threading

    from wallets.feeds import ChainWork

    node, a1 = await linked(anvil, user, rpc_url=anvil.url, ws_url=proxy.url)
    watcher = await start()
    await connected(watcher)
    # The watcher writes its mark on its thread just after it counts the scan.
    assert await until(lambda: feed_state(chain_id=31337) is not None, "the feed's mark after its first scan")
    assert await in_thread(scan_due_chains) == []  # served by the feed process

    # The next scan is held on its thread until the stop has begun.
    entered, release = threading.Event(), threading.Event()
    real_scan = ChainWork.scan

    def held_scan(work: Any) -> Any:
        entered.set()
        release.wait(30)
        return real_scan(work)

    watcher.work.scan = held_scan.__get__(watcher.work)  # type: ignore[method-assign]
    sent = await in_thread(node.pay, 0, a1, 7)
    assert await asyncio.to_thread(entered.wait, 30)
    stopping = asyncio.create_task(start.stop(watcher))
    await asyncio.sleep(0)  # the stop has begun: the watcher's tasks are cancelled
    assert not stopping.done()
    release.set()
    await stopping

    # The scan in flight committed whole; the mark is gone: beat polls the chain again at
    # its next due time, not when the mark would have expired.
    assert [r[0] for r in await in_thread(rows, a1)] == [sent]
    assert await in_thread(feed_state, chain_id=31337) is None
