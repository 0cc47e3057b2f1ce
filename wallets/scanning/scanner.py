"""`chain_scan`: from the persisted cursor to the head in bounded batches, reorg-safe.

Invariant: the cursor moves in the same database transaction as the activity of the
blocks it moves over, and frames are published only after that commit. A crash at any
point leaves the cursor at the last committed block: the next scan redoes the rest, and
the natural unique key of each row makes that idempotent. Errors (timeouts, RPC errors,
missing blocks, a node behind us) stop the scan where it is, recorded on the cursor.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from ..blocks import BlockListener
from ..chaindata import Block
from ..choices import TxStatus
from ..conf import WalletsSettings, wallets_settings
from ..models import (
    Chain,
    ChainCursor,
    ScannedBlock,
    SkippedLog,
    WalletActivity,
    WatchedTransaction,
)
from ..publishing import publish_transaction, publish_updates
from ..rpc import RpcError, TracesUnsupported
from ..selectors import chain_get, watched_addresses
from ..services.approvals import approvals_apply, notify_on_commit
from ..traces import METHODS as TRACE_METHODS
from ..traces import UNSUPPORTED as TRACE_UNSUPPORTED
from .backfill import extend_for_scan, start_waiting
from .batch import ActivityRow, Batch, build_batch
from .pending import tracked_addresses, transactions_included
from .reorg import CursorMoved, ReorgTooDeep, find_ancestor, roll_back
from .store import insert_activity, upsert_balances, upsert_scanned_blocks

logger = logging.getLogger("wallets.scanner")


@dataclass
class ScanResult:
    chain_id: int
    cursor_before: int | None = None
    cursor_after: int | None = None
    head: int | None = None
    blocks: int = 0
    activity: int = 0
    skipped: int = 0
    reorgs: list[dict[str, int]] = field(default_factory=list)
    error: str = ""
    detail: str = ""
    rpc_calls: int = 0
    rpc_requests: int = 0
    rpc_seconds: float = 0.0
    #: Seconds writing to the database, committing, and publishing after commit (processing breakdown).
    write_seconds: float = 0.0
    commit_seconds: float = 0.0
    publish_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class ScanStopped(Exception):
    """The scan cannot go further now; recorded on the cursor (not an exception to the caller)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def chain_scan(*, chain_id: int, listener: BlockListener | None = None, max_blocks: int | None = None) -> ScanResult:
    """Scan one chain; returns what happened. Raises `UnknownChain` for an unknown chain id."""
    chain = chain_get(chain_id=chain_id)
    conf = wallets_settings()
    listener = listener or BlockListener(max_log_range=conf.logs_range)
    result = ScanResult(chain_id=chain.chain_id)
    lock_key, token = f"wallets:scan-lock:{chain.chain_id}", secrets.token_hex(8)
    if not cache.add(lock_key, token, conf.scan_lock_ttl):
        result.error, result.detail = "locked", "another scan of this chain is running"
        return result
    try:
        _scan(chain, listener, conf, result, max_blocks or conf.max_blocks_per_scan)
    except ScanStopped as stop:
        result.error, result.detail = stop.code, stop.detail
    except TracesUnsupported as exc:
        # The node stopped answering the method it answered before: detect again next scan.
        ChainCursor.objects.filter(chain=chain).update(trace_method="", trace_checked_at=None)
        result.error, result.detail = exc.code, str(exc)[:500]
    except (RpcError, ReorgTooDeep, CursorMoved) as exc:
        result.error, result.detail = exc.code, str(exc)[:500]
    finally:
        if cache.get(lock_key) == token:
            cache.delete(lock_key)
        result.rpc_calls, result.rpc_requests, result.rpc_seconds = listener.calls(chain)
    _record(chain, result)
    if result.error and result.error != "locked":
        log = logger.error if result.error in ("reorg_too_deep", "chain_id_mismatch") else logger.warning
        log("chain %s: scan stopped at %s: %s %s", chain.chain_id, result.cursor_after, result.error, result.detail)
    return result


def _record(chain: Chain, result: ScanResult) -> None:
    now = timezone.now()
    fields: dict[str, Any] = {"last_scan_at": now, "updated_at": now}
    if result.head is not None:
        fields["head_number"] = result.head
    if result.error and result.error != "locked":
        fields.update(last_error=result.error, last_error_detail=result.detail[:2000], last_error_at=now)
    elif not result.error:
        fields.update(last_error="", last_error_detail="")
    ChainCursor.objects.filter(chain=chain).update(**fields)


def _initial_cursor(chain: Chain, listener: BlockListener, head: Block) -> ChainCursor:
    """First scan: start at `start_block` (or the head) with the cursor on the block before."""
    client = listener.client(chain)
    if chain.start_block is not None and chain.start_block <= head.number:
        number = max(0, chain.start_block - 1)
        block = client.block(number, full=False)
        if block is None:
            raise ScanStopped("missing_block", f"start block {number} not served by the node")
    else:
        block = head
    with transaction.atomic():
        cursor, created = ChainCursor.objects.get_or_create(
            chain=chain, defaults={"block_number": block.number, "block_hash": block.hash}
        )
        if created:  # wallets linked before the first scan: their history ends here
            start_waiting(chain=chain, cursor_block=block.number)
    ScannedBlock.objects.get_or_create(
        chain=chain,
        number=block.number,
        defaults={"hash": block.hash, "parent_hash": block.parent_hash, "timestamp": block.timestamp},
    )
    return cursor


def _scan(chain: Chain, listener: BlockListener, conf: WalletsSettings, result: ScanResult, budget: int) -> None:
    head_block = listener.get_latest_block(chain)
    if head_block is None:
        raise ScanStopped("no_head", "the node returned no latest block")
    head = result.head = head_block.number
    cursor = ChainCursor.objects.filter(chain=chain).first() or _initial_cursor(chain, listener, head_block)
    result.cursor_before = result.cursor_after = cursor.block_number
    links = cursor.links_version
    watched = watched_addresses(chain=chain)
    tracked = tracked_addresses(chain=chain)
    retries = 0
    while result.blocks < budget:
        cursor.refresh_from_db()
        if cursor.links_version != links:  # a wallet was linked: look for it from now on
            links = cursor.links_version
            watched = watched_addresses(chain=chain)
            tracked = tracked_addresses(chain=chain)
        result.cursor_after = cursor.block_number
        expected = (cursor.block_number, cursor.block_hash)
        if head <= cursor.block_number:
            # Same height: a reorg that kept the height shows as another hash at the head.
            # Behind us: a lagging node, or a shorter fork; only a hash mismatch says which.
            if head == cursor.block_number and head_block.hash == cursor.block_hash:
                return
            node = head_block if head == cursor.block_number else listener.client(chain).block(head, full=False)
            ours = ScannedBlock.objects.filter(chain=chain, number=head).values_list("hash", flat=True).first()
            if node is not None and (ours is None or node.hash == ours):
                raise ScanStopped("node_behind", f"node head {head} is behind the cursor {cursor.block_number}")
            _reorg(chain, listener, conf, result, expected, below=min(head, cursor.block_number))
            continue
        end = min(head, cursor.block_number + conf.batch_blocks, cursor.block_number + budget - result.blocks)
        got = listener.fetch_blocks(chain, cursor.block_number + 1, end, parent_hash=cursor.block_hash)
        if not got.blocks:
            if got.stopped == "parent_mismatch":
                _reorg(chain, listener, conf, result, expected, below=cursor.block_number)
                continue
            raise ScanStopped(got.stopped or "missing_block", f"block {got.stopped_at} unavailable from the node")
        nonces = _watched_nonces(chain)
        traces = _trace_method(chain, listener, got.blocks[0].number)
        batch = build_batch(
            chain=chain,
            listener=listener,
            blocks=got.blocks,
            watched=watched,
            head=head,
            conf=conf,
            watched_nonces=set(nonces),
            tracked=tracked,
            traces=traces,
        )
        if not batch.blocks:
            # The chain moved between our calls (logs of another fork): the next round
            # sees the reorg by parent hash. A node that keeps disagreeing with itself stops us.
            retries += 1
            if retries > 3:
                raise ScanStopped("inconsistent_node", "logs and blocks from the node keep disagreeing")
            continue
        _commit(chain, expected, batch, head, conf, nonces, result, (links, watched))
        result.blocks += len(batch.blocks)
        result.activity += len(batch.rows)
        result.skipped += len(batch.skips)
        result.cursor_after = batch.blocks[-1].number
        if got.stopped and got.stopped != "parent_mismatch" and batch.blocks[-1].number == got.blocks[-1].number:
            raise ScanStopped(got.stopped, f"block {got.stopped_at} unavailable from the node")


def _reorg(
    chain: Chain,
    listener: BlockListener,
    conf: WalletsSettings,
    result: ScanResult,
    expected: tuple[int, str],
    below: int,
) -> None:
    ancestor = find_ancestor(chain=chain, listener=listener, below=below, window=conf.reorg_window)
    if ancestor == expected:
        # The node still serves our cursor block, yet the next block names another parent:
        # the node is inconsistent (a missing parent), not reorganised. Wait; write nothing.
        raise ScanStopped(
            "missing_parent", f"block {expected[0] + 1} does not build on block {expected[0]} {expected[1]}"
        )
    reorg = roll_back(chain=chain, listener=listener, expected=expected, ancestor=ancestor)
    result.reorgs.append({"ancestor": reorg.ancestor, "depth": reorg.depth, "removed": reorg.removed})
    if len(result.reorgs) > 10:
        raise ScanStopped("reorg_loop", "the chain keeps reorganising; trying again at the next scan")


#: A node found without call traces is asked again this often (it may have been upgraded).
TRACE_RECHECK = timedelta(hours=1)


def _trace_method(chain: Chain, listener: BlockListener, sample: int) -> str:
    """The node's call-trace method for internal transfers, detected once and remembered
    on the cursor ("" when off or unsupported: the chain's health says which)."""
    if chain.traces == "off":
        return ""
    cursor = ChainCursor.objects.get(chain=chain)
    if cursor.trace_method in TRACE_METHODS:
        return cursor.trace_method
    now = timezone.now()
    if cursor.trace_checked_at is not None and now - cursor.trace_checked_at < TRACE_RECHECK:
        return ""
    client = listener.client(chain)
    reasons = []
    found = ""
    for method in TRACE_METHODS:
        try:
            client.traces(method, [sample])
        except TracesUnsupported as exc:
            reasons.append(str(exc)[:140])
            continue
        found = method
        break
    ChainCursor.objects.filter(chain=chain).update(
        trace_method=found or TRACE_UNSUPPORTED,
        trace_detail="" if found else "; ".join(reasons)[:300],
        trace_checked_at=now,
    )
    logger.info("chain %s: internal transfers %s", chain.chain_id, f"from {found}" if found else "unsupported")
    return found


def _watched_nonces(chain: Chain) -> dict[tuple[str, int], list[int]]:
    """(sender, nonce) -> pks of still-pending watched transactions (to spot replacements;
    a replacement seen pending too shares the key with the one it replaces)."""
    rows = WatchedTransaction.objects.filter(chain=chain, status=TxStatus.PENDING, nonce__isnull=False).exclude(
        from_address=""
    )
    out: dict[tuple[str, int], list[int]] = {}
    for pk, sender, nonce in rows.values_list("pk", "from_address", "nonce"):
        out.setdefault((sender.lower(), int(nonce or 0)), []).append(pk)
    return out


def _commit(
    chain: Chain,
    expected: tuple[int, str],
    batch: Batch,
    head: int,
    conf: WalletsSettings,
    nonces: dict[tuple[str, int], list[int]],
    result: ScanResult,
    links: tuple[int, set[str]],
) -> None:
    last = batch.blocks[-1]
    started = time.perf_counter()
    committed: list[float] = []
    with transaction.atomic():
        # The first on-commit callback: it runs right after COMMIT, before the publications.
        transaction.on_commit(lambda: committed.append(time.perf_counter()))
        cursor = ChainCursor.objects.select_for_update().get(chain=chain)
        if (cursor.block_number, cursor.block_hash) != expected:
            raise CursorMoved(f"chain {chain.chain_id}: cursor moved from {expected[0]} during the scan")
        if cursor.links_version != links[0]:
            # Linked after this batch read its addresses: their backfills cover these blocks.
            extend_for_scan(
                chain=chain, scanned_with=links[1], watched_now=watched_addresses(chain=chain), last_block=last.number
            )
        # Upsert: rows above the cursor exist only if an operator rewound it to re-scan.
        upsert_scanned_blocks(chain=chain, blocks=batch.blocks)
        ScannedBlock.objects.filter(chain=chain, number__lt=last.number - conf.reorg_window).delete()
        rows = _new_rows(chain, batch)
        # A fixed number of statements whatever the row count (tests/wallets/test_scan_store.py).
        insert_activity(chain=chain, rows=rows)
        if batch.skips:
            SkippedLog.objects.bulk_create(batch.skips, ignore_conflicts=True, batch_size=500)
        upsert_balances(chain=chain, changes=batch.balances)
        approvals = approvals_apply(chain=chain, changes=batch.approvals, timestamp_ms=last.timestamp * 1000)
        _mark_replaced(chain, batch, nonces)
        transactions_included(chain=chain, included=batch.included, head=head)
        ChainCursor.objects.filter(pk=cursor.pk).update(
            block_number=last.number, block_hash=last.hash, head_number=head, updated_at=timezone.now()
        )
        # One batched publication for the whole scan batch, after the commit.
        publish_updates([row.payload for row in rows] + approvals.frames)
        notify_on_commit(approvals.raised)
        written = time.perf_counter()
    # Leaving the block committed and ran the on-commit publications.
    done = time.perf_counter()
    at = committed[0] if committed else done  # inside an outer transaction nothing ran yet
    result.write_seconds += written - started
    result.commit_seconds += at - written
    result.publish_seconds += done - at


_KEY = ("address", "kind", "block_hash", "tx_hash", "log_index", "token")


def _new_rows(chain: Chain, batch: Batch) -> list[ActivityRow]:
    """Rows not stored yet: a re-scan of committed blocks writes and publishes nothing twice."""
    if not batch.rows:
        return []
    start, end = batch.blocks[0].number, batch.blocks[-1].number
    existing = set(
        WalletActivity.objects.filter(chain=chain, block_number__gte=start, block_number__lte=end).values_list(*_KEY)
    )
    if not existing:
        return batch.rows
    return [r for r in batch.rows if r.key not in existing]


def _mark_replaced(chain: Chain, batch: Batch, nonces: dict[tuple[str, int], list[int]]) -> None:
    """A watched pending transaction whose (sender, nonce) was mined under another hash was replaced."""
    for key, mined in batch.mined_nonces.items():
        for pk in nonces.get(key, ()):
            _replace(pk, mined)


def _replace(pk: int, mined: Any) -> None:
    tx = WatchedTransaction.objects.select_for_update().select_related("chain").get(pk=pk)
    if tx.hash != mined.hash and tx.status == TxStatus.PENDING:
        tx.status, tx.replaced_by, tx.reason = TxStatus.REPLACED, mined.hash, _replacement_kind(tx, mined)
        tx.save(update_fields=["status", "replaced_by", "reason", "updated_at"])
        publish_transaction(tx)


def _replacement_kind(tx: WatchedTransaction, mined: Any) -> str:
    """speed-up (same recipient and value), cancel (0 to self) or other (reference: chain facts)."""
    to = (mined.to or "").lower()
    if to == tx.from_address.lower() and mined.value == 0:
        return "cancelled (0-value transaction to self with the same nonce)"
    if to == (tx.to_address or "").lower() and mined.value == int(tx.value):
        return "sped up (same nonce, same recipient and value, higher fee)"
    return "replaced by another transaction with the same nonce"
