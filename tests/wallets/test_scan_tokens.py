"""Scanning a real EVM: ERC-20, ERC-721, ERC-1155 and native activity, exact rows and frames."""

from __future__ import annotations

from typing import Any

import pytest

from tests.wallets.conftest import Evm, frames, link
from wallets.models import Balance, ChainCursor, TokenMetadata, WalletActivity
from wallets.scanning.scanner import chain_scan

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.evm]

UNLIMITED = 2**256 - 1


def rows(address: str) -> list[tuple[Any, ...]]:
    return list(
        WalletActivity.objects.filter(address=address)
        .order_by("id")
        .values_list("kind", "block_number", "log_index", "token")
    )


def test_erc20_transfer_approval_and_balances(evm: Evm, chain: Any, user: Any) -> None:
    a1, a2, a3 = evm.accounts[1:4]
    token = evm.deploy("TestERC20", "Test Token", "TT", 6)
    link(user, a1)
    link(user, a2.lower())
    start = evm.head + 1
    chain.start_block = start
    chain.save()
    mint = evm.call(token.functions.mint(a1, 1_000_000_000), 0)
    send = evm.call(token.functions.transfer(a2, 250_000_000), 1)
    approve = evm.call(token.functions.approve(a3, UNLIMITED), 1)

    result = chain_scan(chain_id=chain.chain_id)

    assert result.error == "" and result.blocks == evm.head - start + 1
    cursor = ChainCursor.objects.get(chain=chain)
    assert (cursor.block_number, cursor.block_hash) == (evm.head, evm.block_hash(evm.head))
    t = token.address
    b_mint, b_send, b_approve = start, start + 1, start + 2
    assert rows(a1) == [
        ("transaction", b_mint, 0, t),
        ("transaction", b_send, 0, t),
        ("approval", b_approve, 0, t),
        ("balance", b_approve, -1, ""),
        ("balance", b_approve, -1, t),
    ]
    assert rows(a2) == [("transaction", b_send, 0, t), ("balance", b_approve, -1, t)]
    sent = WalletActivity.objects.get(address=a2, kind="transaction").payload
    assert sent == {
        "type": "transaction",
        "address": a2,
        "chain": evm.chain_id,
        "timestamp": sent["timestamp"],
        "data": {
            "hash": send,
            "block": b_send,
            "block_hash": evm.block_hash(b_send),
            "log_index": 0,
            "event": "Transfer",
            "standard": "erc20",
            "token": t,
            "symbol": "TT",
            "status": "included",
            "confirmations": 2,
            "required": 3,
            "from": a1,
            "to": a2,
            "value": 250.0,
            "value_raw": "250000000",
            "decimals": 6,
            "direction": "in",
        },
    }
    assert sent["timestamp"] == evm.w3.eth.get_block(b_send)["timestamp"] * 1000
    minted = WalletActivity.objects.get(address=a1, kind="transaction", block_number=b_mint).payload["data"]
    assert minted["mint"] is True and minted["from"] == "0x0000000000000000000000000000000000000000"
    assert minted["hash"] == mint and minted["direction"] == "in"
    approval = WalletActivity.objects.get(address=a1, kind="approval").payload["data"]
    assert approval["hash"] == approve
    assert approval["spender"] == a3 and approval["unlimited"] is True and approval["value_raw"] == str(UNLIMITED)
    # Balances: the token delta is what the batch changed; native: a1 paid gas.
    token_balance = Balance.objects.get(address=a1, token=t)
    assert (int(token_balance.amount), token_balance.symbol, token_balance.decimals) == (750_000_000, "TT", 6)
    delta = WalletActivity.objects.get(address=a1, kind="balance", token=t).payload["data"]
    assert (delta["balance"], delta["delta"], delta["delta_raw"]) == (750.0, 750.0, "750000000")
    native = WalletActivity.objects.get(address=a1, kind="balance", token="").payload["data"]
    assert native["symbol"] == "ETH" and native["token"] is None and int(native["delta_raw"]) < 0
    assert int(native["balance_raw"]) == evm.w3.eth.get_balance(a1)
    # Frames: exactly the rows' payloads, in block/log order, on each address's channel.
    assert frames(a2) == [r.payload for r in WalletActivity.objects.filter(address=a2).order_by("id")]
    # The unlimited approval is raised as a security warning (tests/wallets/test_approvals.py).
    assert [f["type"] for f in frames(a1)] == [
        "transaction",
        "transaction",
        "approval",
        "balance",
        "balance",
        "security",
    ]
    meta = TokenMetadata.objects.get(address=t.lower())
    assert (meta.symbol, meta.decimals, meta.issues) == ("TT", 6, "")


def test_rescan_is_idempotent(evm: Evm, chain: Any, user: Any) -> None:
    a1, a2 = evm.accounts[1:3]
    token = evm.deploy("TestERC20", "Test Token", "TT", 18)
    link(user, a1)
    chain.start_block = evm.head + 1
    chain.save()
    evm.call(token.functions.mint(a1, 10**18), 0)
    evm.call(token.functions.transfer(a2, 10**17), 1)
    chain_scan(chain_id=chain.chain_id)
    first = list(WalletActivity.objects.order_by("id").values_list("kind", "tx_hash", "log_index", "payload"))
    # Rewind the cursor as a crash before commit would have left it: the re-scan adds nothing.
    cursor = ChainCursor.objects.get(chain=chain)
    start = chain.start_block - 1
    ChainCursor.objects.filter(pk=cursor.pk).update(block_number=start, block_hash=evm.block_hash(start))
    result = chain_scan(chain_id=chain.chain_id)
    assert result.error == ""
    again = list(WalletActivity.objects.order_by("id").values_list("kind", "tx_hash", "log_index", "payload"))
    assert [r[:3] for r in again] == [r[:3] for r in first]
    assert len(frames(a1)) == len(first)  # nothing published twice


def data_of(address: str, kind: str) -> list[dict[str, Any]]:
    return [r.payload["data"] for r in WalletActivity.objects.filter(address=address, kind=kind).order_by("id")]


def test_erc721_transfer_is_told_apart_from_erc20(evm: Evm, chain: Any, user: Any) -> None:
    a1, a2, a3 = evm.accounts[1:4]
    nft = evm.deploy("TestERC721", "Kitties", "KIT")
    link(user, a1)
    link(user, a2)
    chain.start_block = evm.head + 1
    chain.save()
    evm.call(nft.functions.mint(a1, 7), 0)
    evm.call(nft.functions.approve(a3, 7), 1)
    evm.call(nft.functions.setApprovalForAll(a3, True), 1)
    moved = evm.call(nft.functions.transferFrom(a1, a2, 7), 3)

    assert chain_scan(chain_id=chain.chain_id).error == ""

    nfts = data_of(a1, "nft")
    assert [(d["standard"], d["event"], d["token_id"], d["direction"]) for d in nfts] == [
        ("erc721", "Transfer", "7", "in"),
        ("erc721", "Transfer", "7", "out"),
    ]
    assert nfts[0]["mint"] is True and nfts[1]["hash"] == moved and nfts[1]["symbol"] == "KIT"
    approvals = data_of(a1, "approval")
    assert [(a["standard"], a["event"]) for a in approvals] == [("erc721", "Approval"), ("nft", "ApprovalForAll")]
    assert approvals[0]["spender"] == a3 and approvals[0]["token_id"] == "7"
    assert approvals[1]["operator"] == a3 and approvals[1]["approved"] is True
    assert data_of(a2, "nft")[0]["direction"] == "in"
    # An NFT transfer is not a fungible transfer: no ERC-20 balance is read for it.
    assert not WalletActivity.objects.filter(kind="balance", token=nft.address).exists()
    assert TokenMetadata.objects.get(address=nft.address.lower()).decimals is None


def test_erc1155_single_and_batch(evm: Evm, chain: Any, user: Any) -> None:
    a1, a2 = evm.accounts[1:3]
    multi = evm.deploy("TestERC1155")
    link(user, a2)
    chain.start_block = evm.head + 1
    chain.save()
    evm.call(multi.functions.mint(a1, 1, 50), 0)  # concerns nobody watched
    evm.call(multi.functions.mintBatch(a1, [2, 3], [5, 6]), 0)
    single = evm.call(multi.functions.safeTransferFrom(a1, a2, 1, 20, b""), 1)
    batch = evm.call(multi.functions.safeBatchTransferFrom(a1, a2, [2, 3], [4, 6], b""), 1)

    assert chain_scan(chain_id=chain.chain_id).error == ""

    got = data_of(a2, "nft")
    assert [(d["event"], d["hash"], d["ids"], d["values"], d["operator"]) for d in got] == [
        ("TransferSingle", single, ["1"], ["20"], a1),
        ("TransferBatch", batch, ["2", "3"], ["4", "6"], a1),
    ]
    assert all(d["standard"] == "erc1155" and d["from"] == a1 and d["direction"] == "in" for d in got)
    assert WalletActivity.objects.filter(address=a1).count() == 0  # a1 is not linked


def test_native_transfers_and_failed_value_transfer(evm: Evm, chain: Any, user: Any) -> None:
    a1, a2, a3 = evm.accounts[1:4]
    token = evm.deploy("TestERC20", "Test Token", "TT", 18)
    link(user, a2)
    chain.start_block = evm.head + 1
    chain.save()
    before = evm.w3.eth.get_balance(a2)
    paid = evm.pay(1, a2, 10**18)
    evm.pay(1, a3, 5)  # nobody watched
    # Value sent to a contract without a payable fallback reverts: a failed transaction.
    failed = evm.pay(2, token.address, 1_000, gas=100_000)

    assert chain_scan(chain_id=chain.chain_id).error == ""

    txs = data_of(a2, "transaction")
    assert [(d["hash"], d["standard"], d["direction"], d["status"], d["confirmations"]) for d in txs] == [
        (paid, "native", "in", "confirmed", 3),
        (failed, "native", "out", "failed", 1),
    ]
    assert txs[0]["value"] == 1.0 and txs[0]["value_raw"] == str(10**18) and txs[0]["token"] is None
    assert txs[0]["from"] == a1 and txs[0]["symbol"] == "ETH"
    balance = data_of(a2, "balance")
    # a2 received 1 ETH and paid gas for the failed transfer: one delta for the batch.
    assert int(balance[0]["delta_raw"]) == evm.w3.eth.get_balance(a2) - before
    assert int(balance[0]["balance_raw"]) == evm.w3.eth.get_balance(a2)
    assert evm.w3.eth.get_transaction_receipt(failed)["status"] == 0
