"""TransactionMonitor on a real EVM: confirmations, failure with reason, replacement, drop."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.utils import timezone
from web3 import Web3

from realtime_project.events import bus
from tests.support.clock import FakeClock
from tests.wallets.conftest import Evm, frames, link
from wallets.addresses import InvalidTxHash
from wallets.events import TransactionSettled
from wallets.models import WatchedTransaction
from wallets.scanning.scanner import chain_scan
from wallets.selectors import UnknownChain
from wallets.services.transactions import TransactionMonitor

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.evm]


#: Reads the events so far.
Events = Callable[[], list[TransactionSettled]]


@pytest.fixture
def events() -> Iterator[Events]:
    """The `TransactionSettled` events on the bus so far (reading waits for their delivery)."""
    got: list[TransactionSettled] = []
    sub = bus.subscribe(TransactionSettled, got.append, name="tests.wallets.settled")

    def read() -> list[TransactionSettled]:
        assert sub.drain(10), "events were not delivered"
        return list(got)

    yield read
    bus.unsubscribe(sub)


def statuses(address: str, tx_hash: str) -> list[tuple[str, int]]:
    return [
        (f["data"]["status"], f["data"]["confirmations"])
        for f in frames(address)
        if f["type"] == "transaction" and f["data"]["hash"] == tx_hash and "nonce" in f["data"] and "chain" in f["data"]
    ]


def test_pending_included_confirmations_confirmed(
    evm: Evm, chain: Any, user: Any, events: Callable[[], list[TransactionSettled]]
) -> None:
    a1, a2 = evm.accounts[1:3]
    link(user, a2)
    evm.tester.disable_auto_mine_transactions()
    tx_hash = evm.pay(1, a2, 12345)
    monitor = TransactionMonitor()
    tx = monitor.watch(tx_hash.upper().replace("0X", "0x"), evm.chain_id, user_id=user.pk)
    assert (tx.status, tx.from_address, tx.to_address, tx.nonce, int(tx.value)) == ("pending", a1, a2, 0, 12345)
    monitor.poll(chain)  # in the mempool: still pending, nothing to publish
    assert monitor.get_status(tx_hash, evm.chain_id)["status"] == "pending"
    evm.mine(1)
    for _ in range(3):
        monitor.poll(chain)
        evm.mine(1)
    monitor.poll(chain)  # no change after confirmation: nothing more published
    assert statuses(a2, tx_hash) == [("included", 1), ("included", 2), ("confirmed", 3)]
    status = monitor.get_status(tx_hash, evm.chain_id)
    assert status is not None and status["block"] == evm.w3.eth.get_transaction_receipt(tx_hash)["blockNumber"]
    assert (status["status"], status["confirmations"], status["required"], status["from"], status["to"]) == (
        "confirmed",
        3,
        3,
        a1,
        a2,
    )
    assert events() == [
        TransactionSettled(
            outcome="confirmed",
            user_ids=(user.pk,),
            chain=evm.chain_id,
            hash=tx_hash,
            sender=a1,
            recipient=a2,
            value=12345 / 10**18,
            reason=None,
        )
    ]


def test_failed_with_revert_reason(
    evm: Evm, chain: Any, user: Any, events: Callable[[], list[TransactionSettled]]
) -> None:
    a1, a2 = evm.accounts[1:3]
    # The sender's proven owner is notified (a watch-only link of it is not: issue #12).
    wallet = link(user, a1)
    wallet.watch_only = False
    wallet.save(update_fields=["watch_only"])
    token = evm.deploy("TestERC20", "Test Token", "TT", 18)
    tx_hash = evm.call(token.functions.transfer(a2, 5), 1, gas=100_000)
    monitor = TransactionMonitor()
    monitor.watch(tx_hash, evm.chain_id)
    monitor.poll(chain)
    tx = WatchedTransaction.objects.get(hash=tx_hash)
    assert (tx.status, tx.reason) == ("failed", "TestERC20: transfer amount exceeds balance")
    assert statuses(a1, tx_hash) == [("failed", 1)]
    assert [(e.outcome, e.reason, e.user_ids) for e in events()] == [
        ("failed", "TestERC20: transfer amount exceeds balance", (user.pk,))
    ]
    evm.mine(5)
    monitor.poll(chain)  # failed is final: no more frames, no second notification
    assert len(events()) == 1 and statuses(a1, tx_hash) == [("failed", 1)]


def test_replaced_by_same_nonce_is_detected_by_the_scan(evm: Evm, chain: Any, user: Any) -> None:
    a1, a2 = evm.accounts[1:3]
    link(user, a1)
    chain.start_block = evm.head + 1
    chain.save()
    chain_scan(chain_id=chain.chain_id)
    evm.tester.disable_auto_mine_transactions()
    nonce = evm.w3.eth.get_transaction_count(a1)
    fees = {"maxFeePerGas": 2 * 10**9, "maxPriorityFeePerGas": 10**9, "nonce": nonce}
    slow = evm.pay(1, a2, 500, **fees)
    monitor = TransactionMonitor()
    monitor.watch(slow, evm.chain_id, user_id=user.pk)
    # Cancel: 0 to self with the same nonce and a higher fee; only that one gets mined.
    cancel = evm.pay(1, a1, 0, maxFeePerGas=4 * 10**9, maxPriorityFeePerGas=3 * 10**9, nonce=nonce)
    evm.mine(1)

    assert chain_scan(chain_id=chain.chain_id).error == ""

    tx = WatchedTransaction.objects.get(hash=slow)
    assert (tx.status, tx.replaced_by) == ("replaced", cancel)
    assert tx.reason.startswith("cancelled")
    replaced = [f for f in frames(a1) if f["type"] == "transaction" and f["data"].get("status") == "replaced"]
    assert replaced[-1]["data"]["replaced_by"] == cancel
    monitor.poll(chain)  # final: the monitor leaves it alone
    assert WatchedTransaction.objects.get(hash=slow).status == "replaced"


def test_replacement_seen_by_the_monitor_through_the_nonce(evm: Evm, chain: Any, user: Any) -> None:
    a1, a2 = evm.accounts[1:3]
    evm.tester.disable_auto_mine_transactions()
    nonce = evm.w3.eth.get_transaction_count(a1)
    slow = evm.pay(1, a2, 500, maxFeePerGas=2 * 10**9, maxPriorityFeePerGas=10**9, nonce=nonce)
    monitor = TransactionMonitor()
    monitor.watch(slow, evm.chain_id)
    evm.pay(1, a2, 500, maxFeePerGas=4 * 10**9, maxPriorityFeePerGas=3 * 10**9, nonce=nonce)
    evm.mine(1)
    monitor.poll(chain)  # no scan ran: the nonce tells
    tx = WatchedTransaction.objects.get(hash=slow)
    assert (tx.status, tx.reason) == ("replaced", "the sender's nonce was used by another transaction")


def test_unknown_transaction_is_dropped_after_grace_polls_and_seconds(evm: Evm, chain: Any) -> None:
    """Dropped after 3 polls *and* 60 s without a trace (a clock, not sleeping): with a scan
    per pushed head, three polls can come within a second."""
    ghost = "0x" + "ab" * 32
    clock = FakeClock(wall=timezone.now())
    monitor = TransactionMonitor(clock=clock)
    monitor.watch(ghost, evm.chain_id)
    for _ in range(3):
        monitor.poll(chain)
    assert WatchedTransaction.objects.get(hash=ghost).status == "pending"  # 3 polls, 0 s
    clock.advance(59)
    monitor.poll(chain)
    assert WatchedTransaction.objects.get(hash=ghost).status == "pending"  # 59 s
    clock.advance(1)
    monitor.poll(chain)
    tx = WatchedTransaction.objects.get(hash=ghost)
    assert tx.status == "dropped" and tx.reason == "not found on the node for 5 polls over 60 s and its nonce is unused"


@pytest.mark.parametrize("bad", ["0x1234", "ab" * 32, "0x" + "zz" * 32, "", "0x" + "ab" * 33])
def test_malformed_hashes_are_refused(evm: Evm, chain: Any, bad: str) -> None:
    with pytest.raises(InvalidTxHash):
        TransactionMonitor().watch(bad, evm.chain_id)
    assert not WatchedTransaction.objects.exists()


def test_unknown_chain_is_refused(evm: Evm, chain: Any) -> None:
    with pytest.raises(UnknownChain):
        TransactionMonitor().watch("0x" + "ab" * 32, 999_999)
    assert not WatchedTransaction.objects.exists()


def test_unwatch(evm: Evm, chain: Any, user: Any) -> None:
    tx_hash = Web3.to_hex(evm.w3.eth.send_transaction({"from": evm.accounts[0], "to": evm.accounts[1], "value": 1}))
    monitor = TransactionMonitor()
    monitor.watch(tx_hash, evm.chain_id, user_id=user.pk)
    assert monitor.unwatch(tx_hash, evm.chain_id, user_id=user.pk) is True
    assert monitor.get_status(tx_hash, evm.chain_id) is None
    assert monitor.unwatch(tx_hash, evm.chain_id, user_id=user.pk) is False
