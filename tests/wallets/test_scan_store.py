"""Batch writes (scanning/store.py): bounded statements per batch, idempotent inserts, in-place upserts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.wallets.conftest import Evm, link
from wallets.chaindata import Block
from wallets.models import Balance, Chain, ScannedBlock, WalletActivity
from wallets.scanning.batch import ActivityRow, BalanceChange
from wallets.scanning.scanner import chain_scan
from wallets.scanning.store import insert_activity, upsert_balances, upsert_scanned_blocks

A1 = "0x52908400098527886E0F7030069857D2E4169EE7"
TOKEN = "0x8617E340B3D01FA5F11F306F4090FD50E238070D"


def scan_queries(chain: Chain) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        result = chain_scan(chain_id=chain.chain_id)
    assert result.error == "", result
    return [q["sql"] for q in queries.captured_queries]


@pytest.mark.django_db(transaction=True)
@pytest.mark.evm
def test_a_batch_writes_with_the_same_statements_for_one_row_or_many(evm: Evm, chain: Any, user: Any) -> None:
    a1, *others = evm.accounts[1:6]
    token = evm.deploy("TestERC20", "Test Token", "TT", 0)
    for address in (a1, *others):
        link(user, address)
    chain.start_block = evm.head + 1
    chain.save()
    evm.call(token.functions.mint(a1, 1_000), 0)
    scan_queries(chain)  # first scan: cursor, token metadata, first balances

    evm.call(token.functions.transfer(others[0], 1), 1)
    one = scan_queries(chain)
    rows_one = WalletActivity.objects.count()
    for n, address in enumerate(others, start=2):
        evm.call(token.functions.transfer(address, n), 1)
    many = scan_queries(chain)

    # 4 transfers in 4 blocks: 8 transfer rows and 6 balance rows, yet not one statement more
    # (no per-row insert, no per-pair balance update, no per-block query).
    assert WalletActivity.objects.count() - rows_one == 14
    assert len(many) == len(one), "\n".join(many)
    # scanned blocks, activity, balances, and the outbox row of the batch's one publication
    assert sum("INSERT" in sql for sql in many) == 4
    assert {(b.address, int(b.amount)) for b in Balance.objects.filter(token=token.address)} == {
        (a1, 1_000 - 1 - 2 - 3 - 4 - 5),
        (others[0], 1 + 2),
        (others[1], 3),
        (others[2], 4),
        (others[3], 5),
    }
    assert Balance.objects.filter(address=a1).count() == 2  # token and native, updated in place


def row(log_index: int, payload: dict[str, Any], block_hash: str = "0x" + "b" * 64) -> ActivityRow:
    return ActivityRow(A1, "transaction", block_hash, "0x" + "c" * 64, log_index, TOKEN, 7, 1_700_000_000, payload)


@pytest.mark.django_db
def test_insert_activity_keeps_payloads_exact_and_ignores_stored_keys() -> None:
    chain = Chain.objects.create(chain_id=99, name="test", rpc_url="http://node", required_confirmations=1)
    payload = {
        "type": "transaction",
        "address": A1,
        "data": {"value": 293.092129, "value_raw": str(2**255 + 1), "symbol": "ÆTH ✓", "to": None, "mint": True},
    }

    insert_activity(chain=chain, rows=[row(0, payload), row(1, payload)])
    insert_activity(chain=chain, rows=[row(1, {"changed": True}), row(2, payload)])

    stored = list(WalletActivity.objects.filter(chain=chain).order_by("id"))
    assert [(r.log_index, r.payload) for r in stored] == [(0, payload), (1, payload), (2, payload)]
    first = stored[0]
    assert (first.address, first.kind, first.token, first.block_number) == (A1, "transaction", TOKEN, 7)
    assert first.timestamp == datetime.fromtimestamp(1_700_000_000, tz=UTC)
    assert first.created_at is not None


@pytest.mark.django_db
def test_upserts_replace_in_place() -> None:
    chain = Chain.objects.create(chain_id=99, name="test", rpc_url="http://node", required_confirmations=1)
    upsert_scanned_blocks(chain=chain, blocks=[Block(5, "0x05", "0x04", 100), Block(6, "0x06", "0x05", 112)])
    upsert_scanned_blocks(chain=chain, blocks=[Block(6, "0x6b", "0x05", 113)])
    assert list(ScannedBlock.objects.order_by("number").values_list("number", "hash", "timestamp")) == [
        (5, "0x05", 100),
        (6, "0x6b", 113),
    ]

    def change(current: int, block: int) -> BalanceChange:
        return BalanceChange(A1.lower(), TOKEN.lower(), "TT", 6, 0, current, block)

    upsert_balances(chain=chain, changes=[change(2**200, 7)])
    upsert_balances(chain=chain, changes=[change(5, 8)])
    balance = Balance.objects.get()
    assert (balance.address, balance.token, int(balance.amount), balance.block_number) == (A1, TOKEN, 5, 8)
    assert (balance.symbol, balance.decimals) == ("TT", 6)
