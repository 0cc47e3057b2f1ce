"""BlockListener on a real EVM: latest block, block and event subscriptions, fork detection."""

from __future__ import annotations

from typing import Any

import pytest

from tests.wallets.conftest import Evm
from wallets.blocks import BlockListener, LogFilter
from wallets.logs import TRANSFER

pytestmark = [pytest.mark.django_db, pytest.mark.evm]


def test_latest_block_and_subscriptions(evm: Evm, chain: Any) -> None:
    listener = BlockListener()
    token = evm.deploy("TestERC20", "Test Token", "TT", 0)
    start = listener.get_latest_block(chain)
    assert start is not None and start.number == evm.head and start.hash == evm.block_hash(evm.head)
    a1, a2 = evm.accounts[1:3]
    evm.call(token.functions.mint(a1, 3), 0)
    evm.call(token.functions.mint(a2, 4), 0)
    evm.mine(1)
    blocks = list(listener.subscribe_blocks(chain, after=start, batch=2))
    assert [b.number for b in blocks] == [start.number + 1, start.number + 2, start.number + 3]
    assert all(b.parent_hash == p.hash for p, b in zip([start, *blocks], blocks, strict=False))
    everything = list(listener.subscribe_events(chain, LogFilter(topics=(TRANSFER,)), after=start))
    assert [(log.block_number, log.topics[2][-40:]) for log in everything] == [
        (start.number + 1, a1.lower()[2:]),
        (start.number + 2, a2.lower()[2:]),
    ]
    # Narrowed by a watched address in the indexed topics (server-side filter).
    only_a2 = list(listener.subscribe_events(chain, LogFilter(addresses=(a2.lower(),)), after=start))
    assert [log.block_number for log in only_a2] == [start.number + 2]
    assert listener.calls(chain)[0] > 0


def test_subscription_stops_at_a_fork(evm: Evm, chain: Any) -> None:
    listener = BlockListener()
    base = listener.get_latest_block(chain)
    assert base is not None
    snap = evm.w3.testing.snapshot()
    evm.pay(0, 1, 1)
    old = listener.get_latest_block(chain)
    assert old is not None
    evm.w3.testing.revert(snap)
    evm.pay(0, 2, 2)
    evm.mine(1)
    # Resuming after a block that is no longer canonical yields nothing: the parent differs.
    assert list(listener.subscribe_blocks(chain, after=old)) == []
    got = listener.fetch_blocks(chain, old.number + 1, evm.head, parent_hash=old.hash)
    assert (got.blocks, got.stopped) == ([], "parent_mismatch")
