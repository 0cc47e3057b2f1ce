"""Non-standard tokens and malformed logs from a real EVM: skipped with reasons, never stalling."""

from __future__ import annotations

from typing import Any

import pytest

from tests.wallets.conftest import Evm, link
from wallets.models import ChainCursor, SkippedLog, TokenMetadata, WalletActivity
from wallets.scanning.scanner import chain_scan

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.evm]


def test_bytes32_symbol_no_decimals_and_a_malformed_log(evm: Evm, chain: Any, user: Any) -> None:
    a1, a2 = evm.accounts[1:3]
    mkr = evm.deploy("NonStandardToken")
    link(user, a1)
    chain.start_block = evm.head + 1
    chain.save()
    evm.call(mkr.functions.mint(a1, 10**20), 0)
    bad = evm.call(mkr.functions.emitMalformed(a1), 0)
    sent = evm.call(mkr.functions.transfer(a2, 10**19), 1)

    result = chain_scan(chain_id=chain.chain_id)

    assert result.error == "" and result.skipped == 1
    assert ChainCursor.objects.get(chain=chain).block_number == evm.head  # not stalled
    meta = TokenMetadata.objects.get(address=mkr.address.lower())
    assert (meta.symbol, meta.decimals) == ("MKR", None)
    assert meta.issues == "symbol() returns bytes32; no decimals()"
    transfers = [
        r.payload["data"] for r in WalletActivity.objects.filter(address=a1, kind="transaction").order_by("id")
    ]
    # Unknown decimals: the value is reported in raw units and says so (decimals null).
    assert [(d["symbol"], d["decimals"], d["value"], d["value_raw"]) for d in transfers] == [
        ("MKR", None, 1e20, str(10**20)),
        ("MKR", None, 1e19, str(10**19)),
    ]
    assert transfers[1]["hash"] == sent
    skipped = SkippedLog.objects.get()
    assert (skipped.tx_hash, skipped.reason) == (bad, "wrong_topic_count")
    assert "Transfer with 2 topics" in skipped.detail
    # A second scan of the same blocks records the skip once (natural key).
    ChainCursor.objects.filter(chain=chain).update(
        block_number=chain.start_block - 1, block_hash=evm.block_hash(chain.start_block - 1)
    )
    chain_scan(chain_id=chain.chain_id)
    assert SkippedLog.objects.count() == 1
