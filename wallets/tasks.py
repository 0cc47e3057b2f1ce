"""Celery tasks: the beat fan-out per chain, the scan of one chain, transaction tracking."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from .blocks import BlockListener
from .choices import BackfillState
from .feedstate import feed_serves
from .models import WalletBackfill
from .rpc import RpcError
from .scanning.backfill import backfill_run
from .scanning.scanner import chain_scan
from .selectors import UnknownChain, chain_get, enabled_chains
from .services.initial_balances import wallet_initial_balances
from .services.pruning import challenges_prune, skipped_logs_prune
from .services.transactions import TransactionMonitor

logger = logging.getLogger("wallets.tasks")


@shared_task(name="wallets.tasks.scan_due_chains", ignore_result=True)
def scan_due_chains() -> list[int]:
    """Beat entry point: enqueue a scan for each enabled chain whose poll interval elapsed.

    A chain the feed process serves (pushed heads, or its own polling) is skipped: beat's
    polling is the fallback for when no feed process runs (wallets/feedstate.py).
    """
    now = timezone.now()
    due: list[int] = []
    for chain in enabled_chains().select_related("cursor"):
        if feed_serves(chain_id=chain.chain_id):
            continue
        cursor = getattr(chain, "cursor", None)
        last = cursor.last_scan_at if cursor is not None else None
        if last is None or (now - last).total_seconds() >= chain.poll_interval:
            due.append(chain.chain_id)
    for chain_id in due:
        transaction.on_commit(partial(scan_chain.delay, chain_id))
    return due


@shared_task(name="wallets.tasks.scan_chain", ignore_result=True)
def scan_chain(chain_id: int) -> dict[str, Any]:
    """Scan one chain to its head, then advance its watched transactions (one listener, shared calls)."""
    try:
        chain = chain_get(chain_id=chain_id)
    except UnknownChain:
        logger.warning("scan_chain: unknown chain id %r", chain_id)
        return {"chain_id": chain_id, "error": "unknown_chain"}
    listener = BlockListener()
    result = chain_scan(chain_id=chain.chain_id, listener=listener).as_dict()
    if result["error"] != "locked":
        result["transactions"] = _track(chain, listener)
    return result


@shared_task(name="wallets.tasks.track_transactions", ignore_result=True)
def track_transactions(chain_id: int) -> dict[str, Any]:
    try:
        chain = chain_get(chain_id=chain_id)
    except UnknownChain:
        return {"chain_id": chain_id, "error": "unknown_chain"}
    return {"chain_id": chain_id, "transactions": _track(chain, BlockListener())}


def _track(chain: Any, listener: BlockListener) -> dict[str, Any]:
    try:
        changed = TransactionMonitor(listener=listener).poll(chain)
    except RpcError as exc:
        logger.warning("chain %s: transaction tracking failed: %s", chain.chain_id, exc.code)
        return {"error": exc.code}
    return {"changed": [tx.hash for tx in changed]}


@shared_task(name="wallets.tasks.prune_challenges", ignore_result=True)
def prune_challenges() -> int:
    """Delete stale sign-in challenges (expired or used more than a day ago) and skip
    records older than 30 days; returns how many challenges went."""
    skipped_logs_prune()
    return challenges_prune()


@shared_task(name="wallets.tasks.initial_balances", ignore_result=True)
def initial_balances(wallet_id: int) -> int:
    """Read and store the balances of a newly linked wallet (see wallets/services/initial_balances.py)."""
    try:
        return wallet_initial_balances(wallet_id=wallet_id)
    except Exception:  # never fail the link over it: balances also follow activity
        logger.exception("initial balances of wallet %s failed", wallet_id)
        return 0


@shared_task(name="wallets.tasks.run_backfills", ignore_result=True)
def run_backfills() -> list[int]:
    """Beat entry point: a backfill run for each chain with open history backfills (a run
    holds the chain's backfill lock; one interrupted by a restart resumes here)."""
    chain_ids = sorted(
        set(
            WalletBackfill.objects.filter(
                state__in=(BackfillState.QUEUED, BackfillState.RUNNING), chain__enabled=True
            ).values_list("chain__chain_id", flat=True)
        )
    )
    for chain_id in chain_ids:
        transaction.on_commit(partial(backfill_chain.delay, chain_id))
    return chain_ids


@shared_task(name="wallets.tasks.backfill_chain", ignore_result=True)
def backfill_chain(chain_id: int) -> dict[str, Any]:
    """Read the history of newly linked addresses on one chain (see wallets/scanning/backfill.py)."""
    try:
        return backfill_run(chain_id=chain_id).as_dict()
    except UnknownChain:
        return {"chain_id": chain_id, "error": "unknown_chain"}
