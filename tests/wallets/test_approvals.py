"""Dangerous approvals on a real EVM: raised with a notification and a revoke hint, cleared by revocation."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from notifications.models import Notification
from realtime_project.gateway.protocol import encode_payload
from tests.wallets.conftest import Evm, frames, link, settle
from wallets.models import KnownContract, TokenApproval, Wallet, WalletActivity
from wallets.scanning.scanner import chain_scan
from wallets.selectors import wallet_snapshot
from wallets.services.approvals import ApprovalChange, approvals_apply

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.evm]

UNLIMITED = 2**256 - 1


def owned(user: Any, address: str) -> Wallet:
    """A wallet the user proved (verified): only such owners are notified."""
    return Wallet.objects.create(user=user, address=address, watch_only=False, verified_at=timezone.now())


def security(address: str) -> list[dict[str, Any]]:
    return [f for f in frames(address) if f["type"] == "security"]


def warnings_of(user: Any) -> list[tuple[str, str]]:
    settle()
    return list(
        Notification.objects.filter(user=user, type="security_warning").order_by("id").values_list("priority", "title")
    )


def test_unlimited_approval_raises_an_urgent_warning_and_revoking_clears_it(
    evm: Evm, chain: Any, user: Any, django_user_model: Any
) -> None:
    a1, spender = evm.accounts[1], evm.accounts[5]
    token = evm.deploy("TestERC20", "Test Token", "TT", 6)
    owned(user, a1)
    watcher = django_user_model.objects.create_user(username="watcher")
    link(watcher, a1)  # a watch-only link of someone else's address: sees the panel, no notification
    chain.start_block = evm.head + 1
    chain.save()
    evm.call(token.functions.mint(a1, 5_000_000), 0)
    approve = evm.call(token.functions.approve(spender, UNLIMITED), 1)

    assert chain_scan(chain_id=chain.chain_id).error == ""
    settle()

    row = TokenApproval.objects.get()
    assert (row.owner, row.token, row.spender, row.standard) == (a1, token.address, spender, "erc20")
    assert (row.warning, row.level, row.tx_hash, int(row.amount)) == ("unlimited", "urgent", approve, UNLIMITED)
    assert row.notified_at is not None
    activity = WalletActivity.objects.get(address=a1, kind="approval").payload["data"]
    assert activity["warning"] == {"reason": "unlimited", "level": "urgent", "known_spender": False}
    (frame,) = security(a1)
    data = frame["data"]
    assert (frame["address"], frame["chain"]) == (a1, evm.chain_id)
    assert (data["state"], data["reason"], data["level"], data["symbol"]) == ("active", "unlimited", "urgent", "TT")
    assert (data["spender"], data["unlimited"], data["amount_raw"]) == (spender, True, str(UNLIMITED))
    assert data["revoke"]["method"] == f"approve({spender}, 0)"
    assert data["revoke"]["to"] == token.address
    # The revoke hint is the exact calldata of approve(spender, 0).
    assert data["revoke"]["data"] == token.encode_abi("approve", [spender, 0])
    (notification,) = Notification.objects.filter(type="security_warning")
    assert notification.user_id == user.pk and notification.priority == "urgent"
    assert notification.title == f"Unlimited approval: {spender[:6]}…{spender[-4:]} may spend all your TT"
    assert "approve(" in notification.body and "not a contract we know" in notification.body
    assert notification.data["reason"] == "unlimited" and notification.data["hash"] == approve
    assert wallet_snapshot(address=a1)["warnings"] == [data]
    # Huge display values (1.16e71 here) read back from the database stay publishable.
    assert encode_payload(wallet_snapshot(address=a1))

    # A re-scan of the same blocks changes and notifies nothing.
    chain_scan(chain_id=chain.chain_id)
    settle()
    assert Notification.objects.filter(type="security_warning").count() == 1

    revoke = evm.call(token.functions.approve(spender, 0), 1)
    assert chain_scan(chain_id=chain.chain_id).error == ""
    row.refresh_from_db()
    assert (row.warning, row.level, int(row.amount), row.tx_hash) == ("", "", 0, revoke)
    cleared = security(a1)[-1]["data"]
    assert (cleared["state"], cleared["hash"], cleared["amount_raw"]) == ("cleared", revoke, "0")
    assert wallet_snapshot(address=a1)["warnings"] == []
    assert warnings_of(watcher) == []


def test_known_spender_is_high_above_balance_warns_and_a_lower_approval_clears(evm: Evm, chain: Any, user: Any) -> None:
    a1, router = evm.accounts[1], evm.accounts[6]
    token = evm.deploy("TestERC20", "Test Token", "TT", 0)
    owned(user, a1)
    KnownContract.objects.create(chain=chain, address=router, name="Test Router")
    chain.start_block = evm.head + 1
    chain.save()
    evm.call(token.functions.mint(a1, 100), 0)
    evm.call(token.functions.approve(router, 150), 1)  # more than the 100 held
    assert chain_scan(chain_id=chain.chain_id).error == ""
    row = TokenApproval.objects.get()
    assert (row.warning, row.level) == ("above_balance", "high")
    assert warnings_of(user) == [("high", "Approval above your balance: Test Router may spend your TT")]
    data = security(a1)[-1]["data"]
    assert (data["spender_name"], data["known_spender"], data["amount"]) == ("Test Router", True, 150.0)

    evm.call(token.functions.approve(router, 60), 1)  # within the balance: safe again
    assert chain_scan(chain_id=chain.chain_id).error == ""
    row.refresh_from_db()
    assert (row.warning, int(row.amount)) == ("", 60)
    assert security(a1)[-1]["data"]["state"] == "cleared"


def test_approval_for_all_true_warns_and_false_clears(evm: Evm, chain: Any, user: Any) -> None:
    a1, operator = evm.accounts[1], evm.accounts[7]
    nft = evm.deploy("TestERC721", "Kittens", "KIT")
    owned(user, a1)
    chain.start_block = evm.head + 1
    chain.save()
    evm.call(nft.functions.setApprovalForAll(operator, True), 1)
    assert chain_scan(chain_id=chain.chain_id).error == ""
    row = TokenApproval.objects.get()
    assert (row.standard, row.warning, row.level, int(row.amount)) == ("operator", "approval_for_all", "urgent", 1)
    data = security(a1)[-1]["data"]
    assert data["approved"] is True and data["revoke"]["method"] == f"setApprovalForAll({operator}, false)"
    assert data["revoke"]["data"] == nft.encode_abi("setApprovalForAll", [operator, False])
    assert warnings_of(user)[0][0] == "urgent"
    assert "may move every NFT of KIT" in warnings_of(user)[0][1]

    evm.call(nft.functions.setApprovalForAll(operator, False), 1)
    assert chain_scan(chain_id=chain.chain_id).error == ""
    row.refresh_from_db()
    assert (row.warning, int(row.amount)) == ("", 0)
    assert [f["data"]["state"] for f in security(a1)] == ["active", "cleared"]


def test_an_older_approval_never_overrides_a_newer_one(evm: Evm, chain: Any, user: Any) -> None:
    """A backfill reads older blocks after the live scan: state moves only forward."""
    a1, spender, token = evm.accounts[1].lower(), evm.accounts[5].lower(), "0x" + "ab" * 20

    def change(block: int, amount: int, warning: str) -> ApprovalChange:
        return ApprovalChange(
            owner=a1,
            token=token,
            spender=spender,
            standard="erc20",
            amount=amount,
            block_number=block,
            block_hash="0x" + f"{block:064x}",
            tx_hash="0x" + f"{block + 1:064x}",
            log_index=0,
            warning=warning,
            level="urgent" if warning else "",
            symbol="X",
            decimals=0,
            spender_name="",
        )

    def apply(*changes: ApprovalChange) -> Any:
        with transaction.atomic():
            return approvals_apply(chain=chain, changes=changes, timestamp_ms=0)

    applied = apply(change(10, 0, ""))
    assert applied.raised == [] and applied.frames == []
    older = apply(change(5, UNLIMITED, "unlimited"))
    assert older.raised == [] and older.frames == []
    assert TokenApproval.objects.get().block_number == 10
    newer = apply(change(12, UNLIMITED, "unlimited"), change(11, 0, ""))
    assert len(newer.raised) == 1 and [f["data"]["state"] for f in newer.frames] == ["active"]


def test_a_reorg_that_orphans_an_approval_clears_its_warning(evm: Evm, chain: Any, user: Any) -> None:
    a1, spender = evm.accounts[1], evm.accounts[5]
    token = evm.deploy("TestERC20", "Test Token", "TT", 0)
    owned(user, a1)
    chain.start_block = evm.head + 1
    chain.save()
    evm.call(token.functions.approve(spender, 10), 1)  # safe (balance 0? above it: see below)
    assert chain_scan(chain_id=chain.chain_id).error == ""
    first = TokenApproval.objects.get()
    assert first.warning == "above_balance"  # 10 > a balance of 0
    evm.call(token.functions.mint(a1, 1_000), 0)
    evm.call(token.functions.approve(spender, 5), 1)
    assert chain_scan(chain_id=chain.chain_id).error == ""
    assert TokenApproval.objects.get().warning == ""  # 5 <= 1,000
    fork = evm.head
    snap = evm.w3.testing.snapshot()
    evm.call(token.functions.approve(spender, UNLIMITED), 1)
    assert chain_scan(chain_id=chain.chain_id).error == ""
    assert TokenApproval.objects.get().warning == "unlimited"

    evm.w3.testing.revert(snap)
    evm.mine(2)  # a longer fork without the unlimited approval
    result = chain_scan(chain_id=chain.chain_id)
    assert result.error == "" and result.reorgs[0]["ancestor"] == fork
    row = TokenApproval.objects.get()
    assert (row.warning, int(row.amount), row.block_number) == ("", 5, fork)
    assert [f["data"]["state"] for f in security(a1)] == ["active", "cleared", "active", "cleared"]
