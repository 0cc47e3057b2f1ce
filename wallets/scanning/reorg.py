"""Reorganisation handling: find the common ancestor, roll back orphaned activity, publish corrections."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from ..addresses import checksum_lower
from ..balances import read_balances
from ..blocks import BlockListener
from ..choices import TxStatus
from ..conf import wallets_settings
from ..models import Balance, Chain, ChainCursor, ScannedBlock, WalletActivity, WatchedTransaction
from ..payloads import balance_update, removed_update
from ..publishing import publish_transaction, publish_update
from ..selectors import chain_get, stored_balances
from ..services.approvals import approvals_roll_back

logger = logging.getLogger("wallets.reorg")


class ReorgTooDeep(Exception):
    """The fork point is older than the blocks we keep: an operator must look."""

    code = "reorg_too_deep"


class CursorMoved(Exception):
    """Another scanner advanced or rolled back the cursor meanwhile (nothing was written)."""

    code = "concurrent_scan"


@dataclass(frozen=True)
class Reorg:
    ancestor: int
    ancestor_hash: str
    depth: int
    removed: int


def find_ancestor(*, chain: Chain, listener: BlockListener, below: int, window: int) -> tuple[int, str]:
    """Newest block at or below `below` whose hash the node and our records agree on."""
    client = listener.client(chain)
    ours = dict(
        ScannedBlock.objects.filter(chain=chain, number__lte=below, number__gt=below - window).values_list(
            "number", "hash"
        )
    )
    number = below
    while number >= 0 and below - number < window:
        mine = ours.get(number)
        if mine is None:
            break
        node = client.block(number, full=False)
        if node is not None and node.hash == mine:
            return number, mine
        number -= 1
    raise ReorgTooDeep(f"chain {chain.chain_id}: no common ancestor within {window} blocks below {below}")


def roll_back(*, chain: Chain, listener: BlockListener, expected: tuple[int, str], ancestor: tuple[int, str]) -> Reorg:
    """Undo everything above `ancestor` in one transaction with the cursor; corrections after commit."""
    number, block_hash = ancestor
    client = listener.client(chain)
    orphaned = WalletActivity.objects.filter(chain=chain, block_number__gt=number)
    pairs = {
        (address.lower(), token.lower())
        for address, token, kind in orphaned.values_list("address", "token", "kind")
        if kind in ("transaction", "balance", "internal")
    }
    # The balances as of the ancestor; the re-scan then moves them forward again.
    balances = read_balances(client, pairs, block=number) if pairs else {}
    now_ms = int(timezone.now().timestamp() * 1000)
    with transaction.atomic():
        cursor = ChainCursor.objects.select_for_update().get(chain=chain)
        if (cursor.block_number, cursor.block_hash) != expected:
            raise CursorMoved(f"chain {chain.chain_id}: cursor moved during the reorg check")
        rows = list(orphaned.order_by("-id"))
        orphaned.delete()
        ScannedBlock.objects.filter(chain=chain, number__gt=number).delete()
        for row in rows:
            publish_update(removed_update(row.payload, timestamp_ms=now_ms))
        known = stored_balances(chain=chain, pairs=pairs)
        for (address, token), amount in sorted(balances.items()):
            before = known.get((address, token))
            if amount is None or before is None or amount == before:
                continue
            row_b = Balance.objects.get(chain=chain, address=checksum_lower(address), token=_token(token))
            payload = balance_update(
                address=address,
                chain_id=chain.chain_id,
                token=token,
                symbol=row_b.symbol,
                decimals=row_b.decimals,
                previous=before,
                current=amount,
                block=number,
                timestamp_ms=now_ms,
            )
            Balance.objects.filter(pk=row_b.pk).update(amount=amount, block_number=number)
            publish_update(payload)
        _unconfirm_transactions(chain, number)
        for frame in approvals_roll_back(chain=chain, ancestor=number, timestamp_ms=now_ms):
            publish_update(frame)
        ChainCursor.objects.filter(pk=cursor.pk).update(
            block_number=number, block_hash=block_hash, updated_at=timezone.now()
        )
    depth = expected[0] - number
    logger.warning("chain %s: reorg of depth %d, rolled back to %d (%d rows)", chain.chain_id, depth, number, len(rows))
    return Reorg(ancestor=number, ancestor_hash=block_hash, depth=depth, removed=len(rows))


def _token(token: str) -> str:
    return checksum_lower(token) if token else ""


def _unconfirm_transactions(chain: Chain, ancestor: int) -> None:
    """Transactions whose block was orphaned are pending again until seen in a new block."""
    moved = list(
        WatchedTransaction.objects.select_for_update()
        .select_related("chain")
        .filter(
            chain=chain,
            block_number__gt=ancestor,
            status__in=(TxStatus.INCLUDED, TxStatus.CONFIRMED, TxStatus.FAILED),
        )
    )
    for tx in moved:
        tx.status, tx.confirmations, tx.block_number, tx.block_hash, tx.reason = TxStatus.PENDING, 0, None, "", ""
        tx.missing_polls = 0
        tx.save(
            update_fields=[
                "status",
                "confirmations",
                "block_number",
                "block_hash",
                "reason",
                "missing_polls",
                "updated_at",
            ]
        )
        publish_transaction(tx)


def deep_ancestor(*, chain: Chain, listener: BlockListener, window: int) -> tuple[int, str]:
    """For a fork deeper than the recent blocks we keep (`reorg_too_deep`): the newest block
    below the cursor whose hash we stored (scanned blocks, then the blocks of stored
    activity) and the node still serves; with none, the block just below everything we
    stored. Nothing of ours at or below the returned block is on another fork."""
    client = listener.client(chain)
    cursor = ChainCursor.objects.get(chain=chain)
    known: dict[int, str] = dict(
        WalletActivity.objects.filter(chain=chain, block_number__lte=cursor.block_number)
        .values_list("block_number", "block_hash")
        .distinct()
    )
    known.update(ScannedBlock.objects.filter(chain=chain).values_list("number", "hash"))
    known[cursor.block_number] = cursor.block_hash
    for number in sorted(known, reverse=True):
        block = client.block(number, full=False)
        if block is not None and block.hash == known[number]:
            return number, block.hash
    lowest = min(known)
    number = max(0, min(lowest - 1, cursor.block_number - window))
    block = client.block(number, full=False)
    if block is None:
        raise ReorgTooDeep(f"chain {chain.chain_id}: the node does not serve block {number}")
    return number, block.hash


def chain_rescan_deep(*, chain_id: int, listener: BlockListener | None = None) -> Reorg:
    """The operator's answer to `reorg_too_deep` (admin action): roll back to the last
    common ancestor found beyond the reorg window (`deep_ancestor`), publishing the
    corrections like any reorg; the next scan reads the node's fork from there."""
    chain = chain_get(chain_id=chain_id)
    listener = listener or BlockListener()
    cursor = ChainCursor.objects.get(chain=chain)
    ancestor = deep_ancestor(chain=chain, listener=listener, window=wallets_settings().reorg_window)
    reorg = roll_back(
        chain=chain, listener=listener, expected=(cursor.block_number, cursor.block_hash), ancestor=ancestor
    )
    ChainCursor.objects.filter(chain=chain).update(last_error="", last_error_detail="")
    logger.warning("chain %s: deep rescan from block %d (%d blocks rolled back)", chain_id, reorg.ancestor, reorg.depth)
    return reorg
