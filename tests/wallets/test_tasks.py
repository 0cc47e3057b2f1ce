"""Tasks, schedule, readiness and the Python API other apps use (portfolio holdings)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from realtime_project.scheduling import declared_specs, install_default_schedule
from tests.wallets.conftest import Evm, link
from wallets.api import portfolio_holdings
from wallets.feedstate import feed_mark
from wallets.health import chains_health
from wallets.models import ChainCursor
from wallets.tasks import prune_challenges, scan_chain, scan_due_chains, track_transactions

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.evm]


def test_beat_fans_out_to_due_chains_only(evm: Evm, chain: Any, user: Any) -> None:
    link(user, evm.accounts[1])
    assert scan_due_chains() == [evm.chain_id]  # eager in embedded mode: the scan ran
    cursor = ChainCursor.objects.get(chain=chain)
    assert cursor.last_scan_at is not None and cursor.last_error == ""
    assert scan_due_chains() == []  # scanned less than its poll interval ago
    chain.enabled = False
    chain.save()
    ChainCursor.objects.update(last_scan_at=None)
    assert scan_due_chains() == []


def test_scan_chain_task_and_tracking_with_unknown_chain(evm: Evm, chain: Any) -> None:
    assert scan_chain(424242) == {"chain_id": 424242, "error": "unknown_chain"}
    assert track_transactions(424242) == {"chain_id": 424242, "error": "unknown_chain"}
    result = scan_chain(evm.chain_id)
    assert result["error"] == "" and result["transactions"] == {"changed": []}


def test_schedule_is_declared_and_installable() -> None:
    specs = {s.name: s for s in declared_specs()}
    assert specs["wallets: scan due chains"].task == "wallets.tasks.scan_due_chains"
    assert specs["wallets: prune sign-in challenges"].task == "wallets.tasks.prune_challenges"
    installed = install_default_schedule()
    assert "wallets: scan due chains" in installed and "wallets: prune sign-in challenges" in installed


def test_stale_sign_in_challenges_are_pruned(evm: Evm, chain: Any, user: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from wallets.models import WalletChallenge
    from wallets.services.linking import wallet_challenge_create

    def challenge(**changes: Any) -> int:
        c = wallet_challenge_create(user_id=user.pk, address=evm.accounts[1], chain_id=evm.chain_id)
        WalletChallenge.objects.filter(pk=c.pk).update(**changes)
        return int(c.pk)

    now = timezone.now()
    fresh = challenge()
    just_expired = challenge(expires_at=now - timedelta(hours=1))
    long_expired = challenge(expires_at=now - timedelta(days=2))
    used_recently = challenge(used_at=now - timedelta(hours=2))
    used_long_ago = challenge(used_at=now - timedelta(days=3))
    from wallets.models import SkippedLog

    def skipped(age_days: int) -> int:
        row = SkippedLog.objects.create(
            chain=chain, block_number=1, block_hash="0x" + "ab" * 32, log_index=age_days, reason="bad_topics"
        )
        SkippedLog.objects.filter(pk=row.pk).update(created_at=now - timedelta(days=age_days))
        return int(row.pk)

    recent_skip, old_skip = skipped(2), skipped(31)
    assert prune_challenges() == 2
    assert set(SkippedLog.objects.values_list("pk", flat=True)) == {recent_skip}
    assert not SkippedLog.objects.filter(pk=old_skip).exists()  # the 31-day-old record went
    left = set(WalletChallenge.objects.values_list("pk", flat=True))
    assert left == {fresh, just_expired, used_recently}
    assert long_expired not in left and used_long_ago not in left
    assert prune_challenges() == 0


def test_portfolio_holdings_and_readiness(evm: Evm, chain: Any, user: Any) -> None:
    a1 = evm.accounts[1]
    token = evm.deploy("TestERC20", "Test Token", "TT", 2)
    link(user, a1)
    chain.start_block = evm.head + 1
    chain.save()
    evm.call(token.functions.mint(a1, 750), 0)
    assert chains_health()["chains"] == {str(evm.chain_id): {"ok": True, "state": "not_started"}}
    scan_chain(evm.chain_id)
    assert portfolio_holdings(user.pk) == [
        {"chain": evm.chain_id, "address": a1, "token": token.address, "symbol": "TT", "amount": Decimal("7.50")}
    ]
    health = chains_health()
    assert health["ok"] is True and health["chains"][str(evm.chain_id)]["lag"] == 0
    assert health["chains"][str(evm.chain_id)]["heads"] == "polled by beat (no feed process)"
    feed_mark(chain_id=evm.chain_id, mode="push", interval=10)
    assert chains_health()["chains"][str(evm.chain_id)]["heads"] == "pushed (newHeads)"
    assert scan_due_chains() == []  # the feed process serves it
    feed_mark(chain_id=evm.chain_id, mode="poll", interval=10)
    assert chains_health()["chains"][str(evm.chain_id)]["heads"] == "polled by the feed process"
    ChainCursor.objects.update(last_error="rpc_timeout", last_error_detail="eth_getLogs timed out")
    health = chains_health()
    assert health["ok"] is False and health["chains"][str(evm.chain_id)]["error_detail"] == "eth_getLogs timed out"


def test_wallets_chain_command_uses_reference_defaults() -> None:
    from io import StringIO

    from django.core.management import CommandError, call_command

    from wallets.models import Chain

    out = StringIO()
    call_command(
        "wallets_chain", "137", "https://polygon.example/rpc", "--name", "Polygon", "--native-symbol", "POL", stdout=out
    )
    chain = Chain.objects.get(chain_id=137)
    assert (chain.required_confirmations, chain.poll_interval, chain.native_symbol) == (64, 2.0, "POL")
    assert "64 confirmations" in out.getvalue()
    with pytest.raises(CommandError):
        call_command("wallets_chain", "1", "ws://node:8546")
    assert not Chain.objects.filter(chain_id=1).exists()
