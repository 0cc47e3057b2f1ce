"""Reorganisations on a real EVM: snapshot, revert to a fork with different blocks, re-scan."""

from __future__ import annotations

from typing import Any

import pytest

from tests.wallets.conftest import Evm, frames, link
from wallets.models import Balance, ChainCursor, ScannedBlock, WalletActivity, WatchedTransaction
from wallets.scanning.scanner import chain_scan
from wallets.services.transactions import TransactionMonitor

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.evm]


def kinds(address: str) -> list[tuple[str, str, int]]:
    return list(
        WalletActivity.objects.filter(address=address).order_by("id").values_list("kind", "tx_hash", "block_number")
    )


def test_reorg_rolls_back_orphaned_activity_and_rescans(evm: Evm, chain: Any, user: Any) -> None:
    a1, a2, a3 = evm.accounts[1:4]
    token = evm.deploy("TestERC20", "Test Token", "TT", 0)
    link(user, a1)
    link(user, a2)
    chain.start_block = evm.head + 1
    chain.save()
    assert chain_scan(chain_id=chain.chain_id).error == ""  # cursor at the fork point
    fork = evm.head
    snap = evm.w3.testing.snapshot()
    mint = evm.call(token.functions.mint(a1, 100), 0)
    orphan_send = evm.call(token.functions.transfer(a2, 40), 1)
    evm.mine(1)
    monitor = TransactionMonitor()
    monitor.watch(orphan_send, evm.chain_id, user_id=user.pk)
    assert chain_scan(chain_id=chain.chain_id).error == ""
    monitor.poll(chain)
    assert WatchedTransaction.objects.get(hash=orphan_send).status == "included"
    before = frames(a2)
    assert [f["type"] for f in before] == ["transaction", "balance"]
    # The tracked transfer is sent by a1 to the token contract: its frames go to a1.
    assert [(f["type"], f["data"].get("status")) for f in frames(a1)][-1] == ("transaction", "included")
    orphaned_rows = {r.tx_hash for r in WalletActivity.objects.filter(block_number__gt=fork) if r.tx_hash}
    assert orphaned_rows == {mint, orphan_send}

    # The fork: different transactions in blocks fork+1.., and one block longer.
    evm.w3.testing.revert(snap)
    assert evm.head == fork
    new_mint = evm.call(token.functions.mint(a2, 7), 0)
    evm.pay(0, a3, 1)
    evm.mine(2)

    result = chain_scan(chain_id=chain.chain_id)

    assert result.error == ""
    assert result.reorgs == [{"ancestor": fork, "depth": 3, "removed": 6}]
    cursor = ChainCursor.objects.get(chain=chain)
    assert (cursor.block_number, cursor.block_hash) == (evm.head, evm.block_hash(evm.head))
    assert ScannedBlock.objects.get(chain=chain, number=fork + 1).hash == evm.block_hash(fork + 1)
    # Only the fork's activity remains; the orphaned transactions are gone.
    assert {r.tx_hash for r in WalletActivity.objects.filter(tx_hash__gt="")} == {new_mint}
    assert kinds(a1) == []
    assert int(Balance.objects.get(address=a1, token=token.address).amount) == 0
    assert int(Balance.objects.get(address=a2, token=token.address).amount) == 7
    # Channel a2: the original frames, then one correction per orphaned row (removed: true,
    # newest first), then the balance as of the fork point, then the fork's activity.
    after = frames(a2)[len(before) :]
    removed = [f for f in after if f["data"].get("removed")]
    assert [(f["type"], f["data"].get("hash")) for f in removed] == [
        ("balance", None),
        ("transaction", orphan_send),
    ]
    assert all(f["data"]["block"] > fork for f in removed)
    rest = [f for f in after if not f["data"].get("removed")]
    assert [(f["type"], f["data"].get("hash"), f["data"].get("delta_raw")) for f in rest] == [
        ("balance", None, "-40"),
        ("transaction", new_mint, None),
        ("balance", None, "7"),
    ]
    # a1's correction frames and balance back to zero.
    a1_after = [f for f in frames(a1) if f["data"].get("removed")]
    assert sorted(f["data"].get("hash") or "" for f in a1_after) == sorted(["", "", mint, orphan_send])
    # The watched transaction's block is gone: it is pending again (and said so).
    tx = WatchedTransaction.objects.get(hash=orphan_send)
    assert (tx.status, tx.block_number, tx.confirmations) == ("pending", None, 0)
    pending = [f for f in frames(a1) if f["type"] == "transaction" and f["data"].get("status") == "pending"]
    assert pending and pending[-1]["data"]["hash"] == orphan_send


def test_reorg_to_a_shorter_fork_is_detected_at_the_head(evm: Evm, chain: Any, user: Any) -> None:
    a1 = evm.accounts[1]
    link(user, a1)
    chain.start_block = evm.head + 1
    chain.save()
    chain_scan(chain_id=chain.chain_id)
    snap = evm.w3.testing.snapshot()
    gone = evm.pay(0, a1, 1_000)
    evm.mine(3)
    chain_scan(chain_id=chain.chain_id)
    assert WalletActivity.objects.filter(tx_hash=gone).exists()
    evm.w3.testing.revert(snap)
    kept = evm.pay(0, a1, 2_000)  # the fork is one block: shorter than what we scanned
    assert evm.head < ChainCursor.objects.get(chain=chain).block_number

    result = chain_scan(chain_id=chain.chain_id)

    assert result.error == "" and len(result.reorgs) == 1
    assert not WalletActivity.objects.filter(tx_hash=gone).exists()
    assert WalletActivity.objects.filter(tx_hash=kept, kind="transaction").exists()
    assert ChainCursor.objects.get(chain=chain).block_number == evm.head


def test_reorg_deeper_than_the_window_stops_without_writing(evm: Evm, chain: Any, user: Any, settings: Any) -> None:
    settings.WALLETS = {"REORG_WINDOW": 2}
    a1 = evm.accounts[1]
    link(user, a1)
    chain.start_block = evm.head + 1
    chain.save()
    chain_scan(chain_id=chain.chain_id)
    snap = evm.w3.testing.snapshot()
    evm.pay(0, a1, 1)
    evm.mine(4)
    chain_scan(chain_id=chain.chain_id)
    cursor = ChainCursor.objects.get(chain=chain)
    rows = WalletActivity.objects.count()
    evm.w3.testing.revert(snap)
    evm.pay(0, evm.accounts[2], 5)
    evm.mine(5)

    result = chain_scan(chain_id=chain.chain_id)

    assert result.error == "reorg_too_deep"
    after = ChainCursor.objects.get(chain=chain)
    assert (after.block_number, after.block_hash) == (cursor.block_number, cursor.block_hash)
    assert after.last_error == "reorg_too_deep" and "no common ancestor" in after.last_error_detail
    assert WalletActivity.objects.count() == rows


def test_a_deep_reorg_is_shown_in_health_and_admin_and_the_operator_rescans_from_the_ancestor(
    evm: Evm, chain: Any, user: Any, settings: Any, admin_client: Any
) -> None:
    """Deeper than the window: never silent. `/readyz` and the admin say `reorg_too_deep`;
    the admin action rolls back to the last block we stored that the node still has (here
    below the window, found through the stored activity) and the next scan follows the fork."""
    from wallets.health import chains_health

    settings.WALLETS = {"REORG_WINDOW": 2}
    a1, a2 = evm.accounts[1:3]
    link(user, a1)
    link(user, a2)
    chain.start_block = evm.head + 1
    chain.save()
    kept = evm.pay(0, a1, 7)  # below the fork: must survive
    assert chain_scan(chain_id=chain.chain_id).error == ""
    snap = evm.w3.testing.snapshot()
    gone = evm.pay(0, a1, 1)
    evm.mine(4)
    assert chain_scan(chain_id=chain.chain_id).error == ""
    evm.w3.testing.revert(snap)
    fresh = evm.pay(0, a2, 5)
    evm.mine(5)
    assert chain_scan(chain_id=chain.chain_id).error == "reorg_too_deep"

    health = chains_health()["chains"][str(chain.chain_id)]
    assert (health["ok"], health["error"]) == (False, "reorg_too_deep")
    page = admin_client.get("/admin/wallets/chaincursor/").content.decode()
    assert "reorg_too_deep" in page

    cursor = ChainCursor.objects.get(chain=chain)
    reply = admin_client.post(
        "/admin/wallets/chaincursor/", {"action": "rescan_deep", "_selected_action": [cursor.pk]}, follow=True
    )
    assert "rolled back" in reply.content.decode()
    assert not WalletActivity.objects.filter(tx_hash=gone).exists()
    assert WalletActivity.objects.filter(tx_hash=kept).exists()
    corrections = [f for f in frames(a1) if f["data"].get("removed")]
    assert [f["data"]["hash"] for f in corrections if f["type"] == "transaction"] == [gone]

    assert chain_scan(chain_id=chain.chain_id).error == ""
    assert WalletActivity.objects.filter(tx_hash=fresh, address=a2).exists()
    after = ChainCursor.objects.get(chain=chain)
    assert (after.block_number, after.block_hash, after.last_error) == (evm.head, evm.block_hash(evm.head), "")
    assert chains_health()["chains"][str(chain.chain_id)]["error"] is None
