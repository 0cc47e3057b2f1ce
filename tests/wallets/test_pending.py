"""Transactions of proven wallets found by themselves, on a real anvil that mines on demand:
pending from `newPendingTransactions`, then included n/N, confirmed, failed with the
revert reason, replaced, dropped after the grace period (a clock, not sleeping); and,
where the node has no pending subscription, found at inclusion with nonce jumps explained.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from django.utils import timezone
from web3 import Web3

from notifications.models import Notification
from realtime_project.gateway.runtime import memory_history
from tests.support.clock import FakeClock
from tests.wallets.conftest import artifact, link
from tests.wallets.feedsupport import Node, connected, in_thread, register, until
from tests.wallets.nodes import Anvil, rpc
from tests.wallets.wsproxy import WsProxy
from wallets.models import ChainCursor, Wallet, WalletActivity, WatchedTransaction

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.evm]


@pytest.fixture(scope="module")
def anvil_node() -> Iterator[Anvil]:
    """anvil without automining: transactions stay pending until the test mines."""
    node = Anvil("--no-mining")
    yield node
    node.stop()


@pytest.fixture
def anvil(anvil_node: Anvil) -> Iterator[Anvil]:
    snapshot = rpc(anvil_node.url, "evm_snapshot")
    yield anvil_node
    rpc(anvil_node.url, "anvil_dropAllTransactions")
    rpc(anvil_node.url, "evm_revert", [snapshot])


@pytest_asyncio.fixture
async def proxy(anvil: Anvil) -> AsyncIterator[WsProxy]:
    p = await WsProxy(anvil.url.replace("http://", "ws://")).start()
    yield p
    await p.stop()


def owned(user: Any, address: str) -> Wallet:
    return Wallet.objects.create(user=user, address=address, watch_only=False, verified_at=timezone.now())


def mine(url: str, blocks: int = 1) -> None:
    for _ in range(blocks):
        rpc(url, "evm_mine")


def tracked(tx_hash: str) -> WatchedTransaction | None:
    return WatchedTransaction.objects.filter(hash=tx_hash).first()


def status(tx_hash: str) -> tuple[str, int] | None:
    row = tracked(tx_hash)
    return None if row is None else (row.status, row.confirmations)


async def monitor_frames(address: str, tx_hash: str, last: str) -> list[dict[str, Any]]:
    """The monitor's `transaction` frames of `tx_hash` on `wallet:{address}` (they carry `found`),
    once one has the status `last` (or after 10 s): frames go out through the durable outbox
    after the commit, so the row the test saw may be a moment ahead of its frame."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        out = []
        for pub in await memory_history().range(f"wallet:{address}", 0):
            frame = json.loads(pub.payload)
            if frame["type"] == "transaction" and frame["data"].get("hash") == tx_hash and "found" in frame["data"]:
                out.append(frame["data"])
        if any(f["status"] == last for f in out) or asyncio.get_running_loop().time() > deadline:
            return out
        await asyncio.sleep(0.02)


async def test_a_pending_transaction_is_found_then_included_and_confirmed(
    anvil: Anvil, proxy: WsProxy, start: Any, user: Any, django_user_model: Any
) -> None:
    node = Node(anvil.url)
    a1, a2, a3 = node.accounts[1:4]
    chain = await in_thread(register, node, rpc_url=anvil.url, ws_url=proxy.url)
    chain.required_confirmations = 2
    await in_thread(chain.save)
    await in_thread(owned, user, a1)
    watcher_user = await in_thread(django_user_model.objects.create_user, username="onlookers")
    await in_thread(link, watcher_user, a3)  # watch-only: public activity, no tracking
    watcher = await start()
    await connected(watcher)
    assert watcher.stream is not None and watcher.stream.health()["pending"] == "subscribed"

    sent = await in_thread(node.pay, 1, a2, 10**15)
    ignored = await in_thread(node.pay, 3, a2, 10**15)  # from the watch-only address
    await until(lambda: tracked(sent), "the pending transaction tracked")
    row = await in_thread(tracked, sent)
    assert (row.status, row.found, row.from_address, row.to_address) == ("pending", "pending", a1, a2)
    assert await in_thread(lambda: list(row.watchers.values_list("id", flat=True))) == [user.pk]

    await in_thread(mine, anvil.url)
    await until(lambda: status(sent) == ("included", 1), "included 1/2")
    await in_thread(mine, anvil.url)
    await until(lambda: status(sent) == ("confirmed", 2), "confirmed 2/2")
    frames = await monitor_frames(a1, sent, "confirmed")
    assert [(f["status"], f["confirmations"], f["required"]) for f in frames] == [
        ("pending", 0, 2),
        ("included", 1, 2),
        ("confirmed", 2, 2),
    ]
    assert await in_thread(tracked, ignored) is None  # watch-only: never tracked
    public = await in_thread(lambda: WalletActivity.objects.filter(address=a3, tx_hash=ignored).count())
    assert public == 1  # but its transfer is public activity on its channel
    notified = await until(lambda: list(Notification.objects.filter(user=user).values_list("type", flat=True)),
                           "the notification (after commit)")  # fmt: skip
    assert notified == ["transaction_confirmed"]


async def test_a_pending_transaction_that_reverts_is_failed_with_the_reason(
    anvil: Anvil, proxy: WsProxy, start: Any, user: Any
) -> None:
    node = Node(anvil.url)
    a1, a2 = node.accounts[1:3]

    def deploy() -> Any:
        art = artifact("TestERC20")
        factory = node.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        tx = factory.constructor("Feed Token", "FT", 0).transact({"from": node.accounts[0]})
        mine(anvil.url)
        token = node.w3.eth.contract(address=node.w3.eth.get_transaction_receipt(tx)["contractAddress"],
                                     abi=art["abi"])  # fmt: skip
        token.functions.mint(a1, 5).transact({"from": node.accounts[0]})
        mine(anvil.url)
        return token

    token = await in_thread(deploy)
    await in_thread(register, node, rpc_url=anvil.url, ws_url=proxy.url)
    await in_thread(owned, user, a1)
    watcher = await start()
    await connected(watcher)
    # An explicit gas limit: no estimate (which would refuse a transaction that reverts).
    sent = await in_thread(lambda: Web3.to_hex(token.functions.transfer(a2, 50).transact({"from": a1, "gas": 100_000})))
    await until(lambda: tracked(sent), "the pending transfer tracked")
    await in_thread(mine, anvil.url)
    await until(lambda: status(sent) == ("failed", 1), "failed")
    row = await in_thread(tracked, sent)
    assert row.reason == "TestERC20: transfer amount exceeds balance"
    frames = await monitor_frames(a1, sent, "failed")
    assert [(f["status"], f.get("reason")) for f in frames] == [
        ("pending", None),
        ("failed", "TestERC20: transfer amount exceeds balance"),
    ]
    notified = await until(lambda: list(Notification.objects.filter(user=user).values_list("type", flat=True)),
                           "the notification (after commit)")  # fmt: skip
    assert notified == ["transaction_failed"]


async def test_a_pending_transaction_cancelled_by_a_replacement_is_replaced(
    anvil: Anvil, proxy: WsProxy, start: Any, user: Any
) -> None:
    node = Node(anvil.url)
    a1, a2 = node.accounts[1:3]
    await in_thread(register, node, rpc_url=anvil.url, ws_url=proxy.url)
    await in_thread(owned, user, a1)
    watcher = await start()
    await connected(watcher)
    nonce = await in_thread(node.w3.eth.get_transaction_count, a1)
    fees = {"maxFeePerGas": 2 * 10**10, "maxPriorityFeePerGas": 10**9}
    slow = await in_thread(lambda: Web3.to_hex(node.w3.eth.send_transaction(
        {"from": a1, "to": a2, "value": 10**15, "nonce": nonce, **fees})))  # fmt: skip
    await until(lambda: tracked(slow), "the first transaction tracked")
    cancel = await in_thread(lambda: Web3.to_hex(node.w3.eth.send_transaction(
        {"from": a1, "to": a1, "value": 0, "nonce": nonce, "maxFeePerGas": 4 * 10**10,
         "maxPriorityFeePerGas": 3 * 10**9})))  # fmt: skip
    await until(lambda: tracked(cancel), "the replacement tracked")
    await in_thread(mine, anvil.url)
    await until(lambda: status(slow) is not None and status(slow)[0] == "replaced", "replaced")  # type: ignore[index]
    row = await in_thread(tracked, slow)
    assert (row.replaced_by, row.reason) == (cancel, "cancelled (0-value transaction to self with the same nonce)")
    await until(lambda: status(cancel) == ("confirmed", 1), "the replacement confirmed")


async def test_a_pending_transaction_that_never_appears_again_is_dropped_after_the_grace_period(
    anvil: Anvil, proxy: WsProxy, start: Any, user: Any
) -> None:
    node = Node(anvil.url)
    a1, a2 = node.accounts[1:3]
    await in_thread(register, node, rpc_url=anvil.url, ws_url=proxy.url)
    await in_thread(owned, user, a1)
    clock = FakeClock(wall=timezone.now())
    watcher = await start(clock=clock)
    await connected(watcher)
    sent = await in_thread(node.pay, 1, a2, 10**15)
    await until(lambda: tracked(sent), "tracked")
    rpc(anvil.url, "anvil_dropTransaction", [sent])  # gone from the node's mempool

    async def scan() -> None:
        before = watcher.stats.scans
        watcher.request("test")
        await until(lambda: watcher.stats.scans > before, "a scan")

    for _ in range(3):
        await scan()
    assert await in_thread(status, sent) == ("pending", 0)  # three polls, no time passed
    clock.advance(61)
    await scan()
    row = await in_thread(tracked, sent)
    assert row.status == "dropped"
    assert row.reason.startswith("not found on the node for 4 polls over 61 s")
    assert [f["status"] for f in await monitor_frames(a1, sent, "dropped")] == ["pending", "dropped"]


async def test_without_pending_subscriptions_transactions_are_found_at_inclusion_and_nonce_jumps_explained(
    anvil: Anvil, proxy: WsProxy, start: Any, user: Any
) -> None:
    node = Node(anvil.url)
    a1, a2 = node.accounts[1:3]
    proxy.refused_requests = {("eth_subscribe", "newPendingTransactions")}
    await in_thread(register, node, rpc_url=anvil.url, ws_url=proxy.url)
    await in_thread(owned, user, a1)
    watcher = await start()
    await connected(watcher)
    assert watcher.stream is not None
    health = watcher.stream.health()
    assert health["pending"] == "unsupported" and "not supported" in health["pending_detail"]

    first = await in_thread(node.pay, 1, a2, 10**15)
    await in_thread(mine, anvil.url)
    await until(lambda: status(first) == ("confirmed", 1), "found at inclusion, then confirmed")
    row = await in_thread(tracked, first)
    assert (row.found, row.note) == ("inclusion", "")
    assert [f["status"] for f in await monitor_frames(a1, first, "confirmed")] == ["included", "confirmed"]

    # Two transactions mined while nothing scans the chain and an operator then moves the
    # cursor past them, then a third: its nonce jumped by three since the first.
    await start.stop(watcher)
    unseen = [await in_thread(node.pay, 1, a2, 1), await in_thread(node.pay, 1, a2, 2)]
    await in_thread(mine, anvil.url)

    def skip_ahead() -> None:
        head = node.w3.eth.get_block("latest")
        ChainCursor.objects.filter(chain__chain_id=31337).update(
            block_number=head["number"], block_hash=Web3.to_hex(head["hash"])
        )

    await in_thread(skip_ahead)
    watcher = await start()
    await connected(watcher)
    third = await in_thread(node.pay, 1, a2, 3)
    await in_thread(mine, anvil.url)
    await until(lambda: status(third) == ("confirmed", 1), "the third transaction found at inclusion")
    row = await in_thread(tracked, third)
    assert row.found == "inclusion" and [await in_thread(tracked, h) for h in unseen] == [None, None]
    assert row.note == (
        f"nonce jumped from {row.nonce - 3} to {row.nonce}: 2 transaction(s) of this wallet were mined without "
        "being followed here (before it was linked, or while its chain was not scanned)"
    )
    frames = await monitor_frames(a1, third, "confirmed")
    assert frames[0]["note"] == row.note
