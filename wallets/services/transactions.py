"""Watched transactions: pending -> included -> n/N confirmations -> confirmed, or failed/dropped/replaced.

`transaction_watch`/`transaction_unwatch` start and stop following a hash for a user;
`TransactionMonitor` follows them: `poll(chain)` runs after every scan of the chain (so
confirmations are published on each new block); the scanner itself spots replacements
(same sender and nonce mined under another hash) and moves transactions of orphaned
blocks back to pending. A confirmation or a failure is announced once, after commit, as
`TransactionSettled` on the event bus.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from realtime_project.clock import SYSTEM_CLOCK, Clock
from realtime_project.events import bus

from ..addresses import checksum_lower, normalise_tx_hash
from ..blocks import BlockListener
from ..chaindata import Receipt
from ..choices import TxStatus
from ..conf import wallets_settings
from ..events import TransactionSettled
from ..models import Chain, WatchedTransaction
from ..payloads import TransactionData, transaction_data, units
from ..publishing import publish_transaction
from ..rpc import ChainClient, Reverted, RpcError
from ..selectors import chain_get, open_transactions, owner_user_ids_for_addresses

logger = logging.getLogger("wallets.transactions")


class TransactionMonitor:
    """Follows watched transactions of every chain (stateless: the state is in the database)."""

    def __init__(self, *, listener: BlockListener | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.listener = listener or BlockListener()
        self.clock = clock

    # --- watching ---------------------------------------------------------------------------

    def watch(self, tx_hash: str, chain: int, *, user_id: int | None = None) -> WatchedTransaction:
        """Start following `tx_hash` on chain id `chain` (InvalidTxHash / UnknownChain on bad input)."""
        tx_hash = normalise_tx_hash(tx_hash)
        chain_row = chain_get(chain_id=chain)
        tx, created = WatchedTransaction.objects.get_or_create(
            chain=chain_row, hash=tx_hash, defaults={"required": chain_row.required_confirmations, "found": "api"}
        )
        if user_id is not None:
            tx.watchers.add(user_id)
        if created or not tx.from_address:
            try:
                self._fill_details(self.listener.client(chain_row), tx)
            except RpcError as exc:
                # The node may be down or may not know it yet: the poll fills it in later.
                logger.info("watch %s: details not available yet (%s)", tx_hash, exc.code)
        return tx

    def unwatch(self, tx_hash: str, chain: int, *, user_id: int | None = None) -> bool:
        """Stop following (for one user: drop them; with no watcher left, forget the transaction)."""
        tx_hash = normalise_tx_hash(tx_hash)
        chain_row = chain_get(chain_id=chain)
        tx = WatchedTransaction.objects.filter(chain=chain_row, hash=tx_hash).first()
        if tx is None:
            return False
        if user_id is not None:
            if not tx.watchers.filter(pk=user_id).exists():
                return False  # not this user's watch: nothing to stop, nothing deleted
            tx.watchers.remove(user_id)
            if tx.watchers.exists():
                return True
        tx.delete()
        return True

    def get_status(self, tx_hash: str, chain: int, *, user_id: int | None = None) -> TransactionData | None:
        """The transaction's status; with `user_id`, only if that user watches it or
        proved they own its sender or recipient (None otherwise, as for an unknown one)."""
        tx_hash = normalise_tx_hash(tx_hash)
        chain_get(chain_id=chain)
        tx = WatchedTransaction.objects.select_related("chain").filter(chain__chain_id=chain, hash=tx_hash).first()
        if tx is None:
            return None
        if user_id is not None and not (
            tx.watchers.filter(pk=user_id).exists()
            or user_id in owner_user_ids_for_addresses([tx.from_address, tx.to_address])
        ):
            return None
        return transaction_data(tx)

    # --- polling ----------------------------------------------------------------------------

    def poll(self, chain: Chain) -> list[WatchedTransaction]:
        """Advance every open transaction of `chain`; returns those that changed.

        The receipts of all open transactions are read in one JSON-RPC batch (a scan per
        pushed head polls many included transactions per block); only those without one
        are looked up further.
        """
        open_rows = list(open_transactions(chain=chain).values_list("pk", "hash"))
        if not open_rows:
            return []
        client = self.listener.client(chain)
        head = client.head()
        receipts = client.receipts([h for _, h in open_rows])
        changed: list[WatchedTransaction] = []
        for pk, tx_hash in open_rows:
            if self._poll_one(client, pk, head, receipts.get(tx_hash)):
                changed.append(WatchedTransaction.objects.get(pk=pk))
        return changed

    def _poll_one(self, client: ChainClient, pk: int, head: int, receipt: Receipt | None) -> bool:
        conf = wallets_settings()
        now = self.clock.now()
        # RPC first (outside any transaction), then a short locked update.
        snapshot = WatchedTransaction.objects.select_related("chain").get(pk=pk)
        mined_tx = None if receipt else client.transaction(snapshot.hash)
        nonce_now = None
        if receipt is None and mined_tx is None and snapshot.nonce is not None and snapshot.from_address:
            nonce_now = client.nonce(snapshot.from_address, "latest")
        reason = ""
        if receipt is not None and receipt.status == 0:
            reason = self._revert_reason(client, snapshot, receipt.block_number)
        with transaction.atomic():
            tx = WatchedTransaction.objects.select_for_update().select_related("chain").get(pk=pk)
            if tx.status not in (TxStatus.PENDING, TxStatus.INCLUDED):
                return False  # the scanner marked it replaced meanwhile
            before = (tx.status, tx.confirmations, tx.block_number, tx.block_hash)
            if receipt is not None:
                tx.block_number, tx.block_hash = receipt.block_number, receipt.block_hash
                tx.confirmations = max(0, head - receipt.block_number + 1)
                tx.missing_polls, tx.missing_since = 0, None
                if not tx.from_address:
                    tx.from_address = checksum_lower(receipt.sender)
                    tx.to_address = checksum_lower(receipt.to) if receipt.to else ""
                if receipt.status == 0:
                    tx.status, tx.reason = TxStatus.FAILED, reason
                elif tx.confirmations >= tx.required:
                    tx.status = TxStatus.CONFIRMED
                else:
                    tx.status = TxStatus.INCLUDED
            elif mined_tx is not None:
                # Known to the node but not mined (mempool), or its block was orphaned.
                tx.status, tx.confirmations, tx.block_number, tx.block_hash = TxStatus.PENDING, 0, None, ""
                tx.missing_polls, tx.missing_since = 0, None
                _apply_details(tx, mined_tx)
            elif nonce_now is not None and tx.nonce is not None and nonce_now > tx.nonce:
                tx.status, tx.confirmations, tx.block_number, tx.block_hash = TxStatus.REPLACED, 0, None, ""
                tx.reason = tx.reason or "the sender's nonce was used by another transaction"
            else:
                tx.status, tx.confirmations, tx.block_number, tx.block_hash = TxStatus.PENDING, 0, None, ""
                tx.missing_polls += 1
                tx.missing_since = tx.missing_since or now
                # Dropped after a grace period in polls *and* in time: with a scan per
                # pushed head, polls come every block (0.25 s on some chains).
                gone_for = (now - tx.missing_since).total_seconds()
                if tx.missing_polls >= conf.dropped_after_polls and gone_for >= conf.dropped_after_seconds:
                    tx.status = TxStatus.DROPPED
                    tx.reason = (
                        f"not found on the node for {tx.missing_polls} polls over {gone_for:.0f} s "
                        "and its nonce is unused"
                    )
            if (tx.status, tx.confirmations, tx.block_number, tx.block_hash) == before:
                tx.save(
                    update_fields=[
                        "missing_polls",
                        "missing_since",
                        "from_address",
                        "to_address",
                        "nonce",
                        "value",
                        "updated_at",
                    ]
                )
                return False
            tx.save()
            publish_transaction(tx)
            self._notify_on_commit(tx)
            return True

    @staticmethod
    def _fill_details(client: ChainClient, tx: WatchedTransaction) -> None:
        found = client.transaction(tx.hash)
        if found is not None:
            _apply_details(tx, found)
            tx.save(update_fields=["from_address", "to_address", "nonce", "value", "updated_at"])

    @staticmethod
    def _revert_reason(client: ChainClient, tx: WatchedTransaction, block: int) -> str:
        """Replay the call on the state before its block; the node's revert string if any."""
        original = client.transaction(tx.hash)
        if original is None or original.to is None:
            return "reverted"
        call = {
            "from": client.w3.to_checksum_address(original.sender),
            "to": client.w3.to_checksum_address(original.to),
            "data": original.input,
            "value": original.value,
            "gas": original.gas or None,
        }
        try:
            client.call({k: v for k, v in call.items() if v is not None}, max(0, block - 1))
        except Reverted as exc:
            return exc.reason or "reverted"
        except RpcError as exc:
            return f"reverted (reason unavailable: {exc.code})"
        return "reverted (the replay succeeded: the failure depends on earlier transactions of its block)"

    # --- outcomes after commit ---------------------------------------------------------------

    @staticmethod
    def _notify_on_commit(tx: WatchedTransaction) -> None:
        if tx.status not in (TxStatus.CONFIRMED, TxStatus.FAILED) or tx.notified == tx.status:
            return
        tx.notified = tx.status
        tx.save(update_fields=["notified"])
        bus.emit(transaction_settled(tx))  # after commit: nothing is announced that rolls back


def transaction_settled(tx: WatchedTransaction) -> TransactionSettled:
    """The event of a confirmed or failed transaction (cross-app contract)."""
    # Watchers, and the proven owners of either side: not who linked one watch-only.
    user_ids = set(tx.watchers.values_list("id", flat=True)) | owner_user_ids_for_addresses(
        [tx.from_address, tx.to_address]
    )
    return TransactionSettled(
        outcome="confirmed" if tx.status == TxStatus.CONFIRMED else "failed",
        user_ids=tuple(sorted(user_ids)),
        chain=tx.chain.chain_id,
        hash=tx.hash,
        sender=tx.from_address or None,
        recipient=tx.to_address or None,
        value=units(int(tx.value), 18),
        reason=tx.reason or None,
    )


def _apply_details(tx: WatchedTransaction, found: Any) -> None:
    tx.from_address = checksum_lower(found.sender)
    tx.to_address = checksum_lower(found.to) if found.to else ""
    tx.nonce = found.nonce
    tx.value = found.value


def transaction_watch(*, user_id: int | None, chain_id: int, tx_hash: str) -> WatchedTransaction:
    return TransactionMonitor().watch(tx_hash, chain_id, user_id=user_id)


def transaction_unwatch(*, user_id: int | None, chain_id: int, tx_hash: str) -> bool:
    return TransactionMonitor().unwatch(tx_hash, chain_id, user_id=user_id)
