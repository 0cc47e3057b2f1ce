"""Transactions of proven wallets found by themselves: pending (mempool) or at inclusion.

Nobody has to post a hash. Where the node offers `newPendingTransactions` (the feed
process subscribes), a transaction sent from or to an address whose owner proved it
(a verified link) becomes a `WatchedTransaction` the moment the node announces it, with
a `pending` frame on the linked wallets' channels. Where it does not (or the socket was
down), the scanner finds the transactions sent by those addresses when they are mined
(`transactions_included`). Either way the transaction monitor takes over: included n/N,
confirmed, failed with the revert reason, replaced, or dropped after the grace period.

Watch-only links (an address someone else may own) get the public chain activity from
the scanner, but no transaction is tracked for them here.

A nonce jump — a sender's transaction whose nonce is more than one past the last one we
tracked for it — is explained on the transaction (`note`): on chain nonces never skip,
so the ones between were used by transactions we did not follow (sent before the wallet
was linked, or mined while the chain was not scanned).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Max, Q

from ..addresses import checksum_lower
from ..blocks import BlockListener
from ..chaindata import Tx
from ..choices import TxStatus
from ..models import Chain, Wallet, WatchedTransaction
from ..publishing import publish_transaction
from ..rpc import RpcError

logger = logging.getLogger("wallets.pending")


def tracked_addresses(*, chain: Chain) -> set[str]:
    """Lowercase addresses whose owner proved them (verified links) for `chain`."""
    rows = (
        Wallet.objects.filter(watch_only=False)
        .filter(Q(chains=chain) | Q(chains__isnull=True))
        .values_list("address", flat=True)
        .distinct()
    )
    return {a.lower() for a in rows}


def _owners(chain: Chain, addresses: Iterable[str]) -> list[int]:
    wanted = {checksum_lower(a) for a in addresses if a}
    rows = Wallet.objects.filter(address__in=wanted, watch_only=False).filter(Q(chains=chain) | Q(chains__isnull=True))
    return sorted(set(rows.values_list("user_id", flat=True)))


def pending_seen(
    *, chain: Chain, items: Sequence[Tx | str], listener: BlockListener, tracked: set[str] | None = None
) -> list[str]:
    """Track the announced transactions that concern a proven address; returns their hashes.

    `items` are full transactions or bare hashes (then each is read from the node; one
    the node no longer knows is skipped: it was mined or dropped already, and the scanner
    finds it at inclusion if it was mined).
    """
    tracked = tracked_addresses(chain=chain) if tracked is None else tracked
    if not tracked or not items:
        return []
    client = listener.client(chain)
    found: list[Tx] = []
    for item in items:
        tx: Tx | None
        if isinstance(item, str):
            try:
                tx = client.transaction(item)
            except RpcError as exc:
                logger.info("chain %s: pending %s not readable (%s)", chain.chain_id, item, exc.code)
                continue
            if tx is None:
                continue
        else:
            tx = item
        if tx.sender in tracked or (tx.to or "") in tracked:
            found.append(tx)
    out: list[str] = []
    for tx in found:
        if _track_pending(chain, tx):
            out.append(tx.hash)
    return out


def _track_pending(chain: Chain, tx: Tx) -> bool:
    with transaction.atomic():
        row, created = WatchedTransaction.objects.get_or_create(
            chain=chain,
            hash=tx.hash,
            defaults={
                "required": chain.required_confirmations,
                "status": TxStatus.PENDING,
                "from_address": checksum_lower(tx.sender),
                "to_address": checksum_lower(tx.to) if tx.to else "",
                "nonce": tx.nonce,
                "value": tx.value,
                "found": "pending",
            },
        )
        if not created:
            return False
        owners = _owners(chain, [tx.sender, tx.to or ""])
        if owners:
            row.watchers.add(*owners)
        row.chain = chain
        publish_transaction(row)
    return True


@dataclass(frozen=True)
class Included:
    """A transaction sent by a proven address, as the scanner saw it in a block."""

    tx: Tx
    block_number: int
    block_hash: str


def transactions_included(*, chain: Chain, included: Sequence[Included], head: int) -> list[WatchedTransaction]:
    """Track, at inclusion, the transactions of proven senders nobody tracked yet (inside
    the scan batch's transaction); frames go out after its commit. Returns the new rows."""
    if not included:
        return []
    known = set(
        WatchedTransaction.objects.filter(chain=chain, hash__in=[i.tx.hash for i in included]).values_list(
            "hash", flat=True
        )
    )
    fresh = [i for i in included if i.tx.hash not in known]
    if not fresh:
        return []
    senders = {checksum_lower(i.tx.sender) for i in fresh}
    previous = dict(
        WatchedTransaction.objects.filter(chain=chain, from_address__in=senders, nonce__isnull=False)
        .values("from_address")
        .annotate(top=Max("nonce"))
        .values_list("from_address", "top")
    )
    rows: list[WatchedTransaction] = []
    for item in sorted(fresh, key=lambda i: (i.tx.sender, i.tx.nonce)):
        tx = item.tx
        sender = checksum_lower(tx.sender)
        confirmations = max(0, head - item.block_number + 1)
        last = previous.get(sender)
        note = ""
        if last is not None and tx.nonce > last + 1:
            skipped = tx.nonce - last - 1
            note = (
                f"nonce jumped from {last} to {tx.nonce}: {skipped} transaction(s) of this wallet were mined "
                "without being followed here (before it was linked, or while its chain was not scanned)"
            )
        previous[sender] = max(tx.nonce, last if last is not None else tx.nonce)
        row = WatchedTransaction(
            chain=chain,
            hash=tx.hash,
            required=chain.required_confirmations,
            # Included: the monitor's poll right after the scan reads the receipt (failed with
            # the revert reason, or confirmed) and notifies, as for any watched transaction.
            status=TxStatus.INCLUDED,
            confirmations=confirmations,
            block_number=item.block_number,
            block_hash=item.block_hash,
            from_address=sender,
            to_address=checksum_lower(tx.to) if tx.to else "",
            nonce=tx.nonce,
            value=tx.value,
            found="inclusion",
            note=note,
        )
        rows.append(row)
    created = WatchedTransaction.objects.bulk_create(rows, ignore_conflicts=True)
    stored = {
        r.hash: r
        for r in WatchedTransaction.objects.filter(chain=chain, hash__in=[r.hash for r in created]).select_related(
            "chain"
        )
    }
    for row in rows:
        saved = stored.get(row.hash)
        if saved is None:
            continue
        owners = _owners(chain, [row.from_address])
        if owners:
            saved.watchers.add(*owners)
        publish_transaction(saved)
    return list(stored.values())
