"""History on link, on a real EVM: the past activity of a newly linked address over the
chain's depth, progress frames and API, idempotent with the live scan, resumable after a
crash, never a gap with a scan that was running when the wallet was linked."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from notifications.models import Notification
from tests.support.clock import FakeClock
from tests.wallets.conftest import Evm, frames, link, settle
from wallets.blocks import BlockListener
from wallets.models import ChainCursor, TokenApproval, Wallet, WalletActivity, WalletBackfill
from wallets.rpc import RpcUnavailable
from wallets.scanning.backfill import backfill_run
from wallets.scanning.scanner import chain_scan
from wallets.tasks import run_backfills

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.evm]

UNLIMITED = 2**256 - 1


def history(address: str) -> list[tuple[str, int, str]]:
    return sorted(
        WalletActivity.objects.filter(address=address).values_list("kind", "block_number", "tx_hash"),
        key=lambda r: (r[1], r[0]),
    )


def scanned(evm: Evm, chain: Any) -> None:
    """The chain is followed live from the current head (its cursor is there)."""
    chain.start_block = evm.head + 1
    chain.save()
    assert chain_scan(chain_id=chain.chain_id).error == ""


def test_linking_reads_the_past_activity_with_progress_frames_and_api(evm: Evm, chain: Any, user: Any) -> None:
    a1, a2, a3 = evm.accounts[1:4]
    token = evm.deploy("TestERC20", "Test Token", "TT", 0)
    nft = evm.deploy("TestERC721", "Kittens", "KIT")
    first = evm.head + 1
    minted = evm.call(token.functions.mint(a1, 100), 0)
    sent = evm.call(token.functions.transfer(a2, 30), 1)
    paid = evm.pay(0, a1, 10**15)
    kitten = evm.call(nft.functions.mint(a1, 7), 0)
    approved = evm.call(token.functions.approve(a3, 5), 1)
    scanned(evm, chain)
    cursor = ChainCursor.objects.get(chain=chain).block_number

    link(user, a1)

    backfill = WalletBackfill.objects.get(address=a1)
    assert (backfill.state, backfill.to_block, backfill.from_block) == ("queued", cursor, 0)
    run = backfill_run(chain_id=chain.chain_id)
    assert run.error == "" and run.finished == [a1]
    assert history(a1) == sorted(
        [
            ("transaction", first, minted),
            ("transaction", first + 1, sent),
            ("transaction", first + 2, paid),
            ("nft", first + 3, kitten),
            ("approval", first + 4, approved),
        ],
        key=lambda r: (r[1], r[0]),
    )  # no balance rows: the current balances are read on link
    backfill.refresh_from_db()
    assert (backfill.state, backfill.found, backfill.next_block) == ("done", 5, cursor + 1)
    published = frames(a1)
    progress = [f["data"] for f in published if f["type"] == "backfill"]
    assert len(progress) == 1 and progress[-1] == {  # one batch: only the final progress
        "chain": evm.chain_id,
        "state": "done",
        "from_block": 0,
        "to_block": cursor,
        "blocks_done": cursor + 1,
        "blocks_total": cursor + 1,
        "percent": 100.0,
        "found": 5,
        "error": None,
    }
    snapshot = published[-1]
    assert snapshot["type"] == "snapshot" and len(snapshot["activity"]) == 5
    assert snapshot["backfill"] == [progress[-1]]

    api = Client()
    api.force_login(user)
    (wallet,) = api.get("/api/wallets/").json()["wallets"]
    assert wallet["backfill"] == [progress[-1]]


def test_depth_is_per_chain_and_progress_is_throttled_by_a_clock(
    evm: Evm, chain: Any, user: Any, settings: Any
) -> None:
    settings.WALLETS = {"BATCH_BLOCKS": 2}
    a1 = evm.accounts[1]
    hashes = [evm.pay(0, a1, 10 + i) for i in range(6)]
    scanned(evm, chain)
    chain.backfill_blocks = 4
    chain.save()
    link(user, a1)
    # Each batch reads the clock once and is 0.4 s later: one progress frame per second at most.
    run = backfill_run(chain_id=chain.chain_id, clock=FakeClock(step=0.4))
    assert run.batches == 2 and run.blocks == 4
    assert [r[2] for r in history(a1)] == hashes[-4:]  # the last 4 blocks only
    progress = [f["data"]["state"] for f in frames(a1) if f["type"] == "backfill"]
    assert progress == ["running", "done"]


def test_history_and_the_live_scan_meet_without_doubles(evm: Evm, chain: Any, user: Any) -> None:
    a1 = evm.accounts[1]
    before = [evm.pay(0, a1, 1), evm.pay(0, a1, 2)]
    scanned(evm, chain)
    link(user, a1)
    after = evm.pay(0, a1, 3)
    assert chain_scan(chain_id=chain.chain_id).error == ""  # the live scan first
    assert backfill_run(chain_id=chain.chain_id).finished == [a1]
    txs = [r[2] for r in history(a1) if r[0] == "transaction"]
    assert txs == [*before, after]
    # Run it all again from the start: nothing new is written or published.
    count = WalletActivity.objects.count()
    WalletBackfill.objects.update(state="queued", next_block=0)
    assert backfill_run(chain_id=chain.chain_id).error == ""
    assert WalletActivity.objects.count() == count


def test_a_backfill_interrupted_by_a_crash_resumes_where_it_stopped(
    evm: Evm, chain: Any, user: Any, settings: Any
) -> None:
    settings.WALLETS = {"BATCH_BLOCKS": 3}
    a1 = evm.accounts[1]
    hashes = [evm.pay(0, a1, 100 + i) for i in range(8)]
    scanned(evm, chain)
    link(user, a1)

    class Crashing(BlockListener):
        """The node goes away after two batches (as a worker killed mid-run would stop)."""

        def __init__(self) -> None:
            super().__init__()
            self.fetches = 0

        def fetch_blocks(self, *args: Any, **kwargs: Any) -> Any:
            self.fetches += 1
            if self.fetches > 2:
                raise RpcUnavailable("eth_getBlockByNumber: node unreachable", method="eth_getBlockByNumber")
            return super().fetch_blocks(*args, **kwargs)

    crashed = backfill_run(chain_id=chain.chain_id, listener=Crashing())
    assert (crashed.error, crashed.batches) == ("rpc_unavailable", 2)
    backfill = WalletBackfill.objects.get()
    assert (backfill.state, backfill.next_block, backfill.error) == ("running", 6, "rpc_unavailable")
    done_so_far = history(a1)

    run_backfills()  # the periodic entry resumes it (eager here)
    backfill.refresh_from_db()
    assert (backfill.state, backfill.error) == ("done", "")
    assert [r[2] for r in history(a1)] == hashes
    assert history(a1)[: len(done_so_far)] == done_so_far
    assert WalletActivity.objects.filter(address=a1).count() == len(hashes)


def test_a_scan_running_when_the_wallet_is_linked_leaves_no_gap(evm: Evm, chain: Any, user: Any) -> None:
    a1 = evm.accounts[1]
    scanned(evm, chain)
    cursor = ChainCursor.objects.get(chain=chain).block_number
    during = [evm.pay(0, a1, 5), evm.pay(0, a1, 6)]

    class LinkingMidScan(BlockListener):
        """The user links a1 after the scan read its addresses, before it commits."""

        def fetch_blocks(self, *args: Any, **kwargs: Any) -> Any:
            got = super().fetch_blocks(*args, **kwargs)
            if not Wallet.objects.filter(address=a1).exists():
                link(user, a1)
            return got

    assert chain_scan(chain_id=chain.chain_id, listener=LinkingMidScan()).error == ""
    assert history(a1) == []  # the scan did not look for it
    backfill = WalletBackfill.objects.get(address=a1)
    assert backfill.to_block == evm.head > cursor  # extended to what that scan committed
    backfill_run(chain_id=chain.chain_id)
    assert [r[2] for r in history(a1)] == during


def test_a_wallet_linked_before_the_first_scan_waits_for_it(evm: Evm, chain: Any, user: Any) -> None:
    a1 = evm.accounts[1]
    old = evm.pay(0, a1, 9)
    chain.start_block = evm.head + 1
    chain.save()
    link(user, a1)
    assert WalletBackfill.objects.get().state == "waiting"
    assert backfill_run(chain_id=chain.chain_id).batches == 0
    assert chain_scan(chain_id=chain.chain_id).error == ""
    backfill = WalletBackfill.objects.get()
    assert (backfill.state, backfill.to_block) == ("queued", chain.start_block - 1)
    backfill_run(chain_id=chain.chain_id)
    assert [r[2] for r in history(a1)] == [old]


def test_history_warns_once_of_approvals_still_in_force_only(evm: Evm, chain: Any, user: Any) -> None:
    a1, spender, other = evm.accounts[1], evm.accounts[5], evm.accounts[6]
    token = evm.deploy("TestERC20", "Test Token", "TT", 0)
    evm.call(token.functions.approve(spender, UNLIMITED), 1)
    evm.call(token.functions.approve(spender, 0), 1)  # revoked later: history only
    evm.call(token.functions.approve(other, UNLIMITED), 1)  # still in force
    scanned(evm, chain)
    Wallet.objects.create(user=user, address=a1, watch_only=False, verified_at=timezone.now())
    from wallets.scanning.backfill import backfills_on_link

    backfills_on_link(address=a1, chains=[chain])
    backfill_run(chain_id=chain.chain_id)
    rows = {r.spender: r.warning for r in TokenApproval.objects.all()}
    assert rows == {spender: "", other: "unlimited"}
    settle()
    (warning,) = Notification.objects.filter(user=user, type="security_warning")
    assert warning.data["spender"] == other
    snapshot = [f for f in frames(a1) if f["type"] == "snapshot"][-1]
    assert [w["spender"] for w in snapshot["warnings"]] == [other]


def test_histories_finishing_together_publish_the_same_snapshots_in_one_read(
    evm: Evm, chain: Any, user: Any, django_assert_max_num_queries: Any
) -> None:
    from wallets.selectors import wallet_snapshot, wallet_snapshots

    a1, a2, a3 = evm.accounts[1:4]
    token = evm.deploy("TestERC20", "Test Token", "TT", 0)
    for n in range(3):
        evm.call(token.functions.mint(a1, 10 + n), 0)
        evm.pay(0, a2, 10**15 + n)
    evm.call(token.functions.approve(a3, UNLIMITED), 1)
    scanned(evm, chain)
    for address in (a1, a2, a3):
        link(user, address)
    run = backfill_run(chain_id=chain.chain_id)
    assert run.error == "" and sorted(run.finished) == sorted([a1, a2, a3])

    # The batched read (a window per address) gives exactly each address's own snapshot.
    with django_assert_max_num_queries(8):
        together = wallet_snapshots(addresses=[a1, a2, a3], limit=2)
    assert together == {a: wallet_snapshot(address=a, limit=2) for a in (a1, a2, a3)}
    assert [len(together[a]["activity"]) for a in (a1, a2)] == [2, 2]
    assert together[a1]["warnings"] and together[a1]["warnings"][0]["reason"] == "unlimited"
    # Each finished history published its final progress and a fresh snapshot.
    published = [f for f in frames(a2) if f["type"] in ("backfill", "snapshot")]
    assert [f["type"] for f in published][-2:] == ["backfill", "snapshot"]
    assert published[-1]["activity"] == wallet_snapshot(address=a2)["activity"]


def test_a_wallet_linked_while_histories_are_read_is_read_too(evm: Evm, chain: Any, user: Any, settings: Any) -> None:
    """The open histories are read once per run, not per batch: a link in the middle of a
    run changes the chain's links version, and the next batch reads them again."""
    settings.WALLETS = {"ADDRESS_FILTER_LIMIT": 100, "BATCH_BLOCKS": 2}
    a1, a2 = evm.accounts[1:3]
    first = evm.head + 1
    paid = [evm.pay(0, a, 10**15 + n) for n in range(3) for a in (a1, a2)]
    scanned(evm, chain)
    link(user, a1)

    class LinkingListener(BlockListener):
        linked = False

        def fetch_blocks(self, *args: Any, **kwargs: Any) -> Any:
            if not self.linked:
                self.linked = True
                link(user, a2)  # between the first batch's read and its commit
            return super().fetch_blocks(*args, **kwargs)

    run = backfill_run(chain_id=chain.chain_id, listener=LinkingListener())

    assert run.error == "" and sorted(run.finished) == sorted([a1, a2])
    for address, mine in ((a1, paid[0::2]), (a2, paid[1::2])):
        assert {h for k, _, h in history(address) if k == "transaction"} == set(mine)
        backfill = WalletBackfill.objects.get(address=address)
        assert (backfill.state, backfill.found, backfill.next_block) == ("done", 3, backfill.to_block + 1)
    assert first >= WalletBackfill.objects.get(address=a2).from_block
