"""History on link: a linked address's past activity, read in the background, resumable.

Linking an address creates one `WalletBackfill` per chain (one per address and chain,
shared by every user who links it): blocks `[to_block - depth + 1, to_block]`, where
`to_block` is the chain's cursor when the link commits and `depth` the chain's
`backfill_blocks` (default: a day of blocks). The live scan covers everything after the
cursor; a scan that was already running with the old set of addresses extends
`to_block` to what it committed (scanner `_commit`, under the cursor lock the link also
takes), so nothing falls between the two.

`backfill_run(chain_id=…)` sweeps every open backfill of a chain together, oldest block
first, in batches of `batch_blocks`: the same `build_batch` as the live scan (native and
token transfers, approvals, NFTs, internal transfers), without balance rows (the
current balances are read on link, `services/initial_balances.py`). Each batch commits its rows with each
backfill's `next_block` in one transaction, so a restart resumes where it stopped and a
re-run writes nothing twice (natural keys, ON CONFLICT DO NOTHING); the live scan's rows
and the backfill's meet on the same keys. Blocks the live scan still holds (the reorg
window) must have the same hash, or the batch is read again; blocks above the cursor (a
reorg rolled it back) are left to the live scan.

Progress goes to the user as `backfill` frames on `wallet:{address}` (at most one per
`PROGRESS_EVERY` seconds per address, by the injected `Clock`) and in the API; at the end a
fresh snapshot is published (the dashboard applies it as a reset), and the dangerous
approvals still in force in the history are notified once.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Least

from realtime_project.clock import SYSTEM_CLOCK, Clock

from ..addresses import checksum_lower
from ..blocks import BlockListener
from ..choices import BackfillState
from ..conf import DEFAULT_BLOCK_TIMES, wallets_settings
from ..models import Chain, ChainCursor, ScannedBlock, SkippedLog, TokenApproval, WalletBackfill
from ..payloads import WalletUpdate, backfill_update
from ..publishing import publish_updates
from ..rpc import RpcError
from ..selectors import chain_get, wallet_snapshots
from ..services.approvals import approvals_apply, notify_on_commit
from ..traces import METHODS
from .batch import build_batch
from .store import insert_activity

logger = logging.getLogger("wallets.backfill")

#: A day of blocks is the default depth.
DAY_SECONDS = 86_400
#: At most one progress frame per address this often (the last one always goes out).
PROGRESS_EVERY = 1.0
#: Blocks one run sweeps at most before returning (the periodic task continues).
MAX_BLOCKS_PER_RUN = 200_000
OPEN_STATES = (BackfillState.QUEUED, BackfillState.RUNNING)


def backfill_depth(chain: Chain) -> int:
    """Blocks of history read on link: the chain's `backfill_blocks`, or a day of blocks."""
    if chain.backfill_blocks is not None:
        return int(chain.backfill_blocks)
    block_time = DEFAULT_BLOCK_TIMES.get(chain.chain_id) or max(float(chain.poll_interval), 0.25)
    return max(1, int(DAY_SECONDS / block_time))


def _range(to_block: int, depth: int) -> tuple[int, int]:
    return max(0, to_block - depth + 1), to_block


def backfills_on_link(*, address: str, chains: Iterable[Chain]) -> list[int]:
    """In the link's transaction: a backfill per chain for `address`; returns the chain ids.

    The chain's cursor row is updated (its `links_version` bumped) before it is read: that
    row lock orders the link with the scanner's commits, and tells a scan that started
    with the old addresses to extend the range (`extend_for_scan`).
    """
    started: list[int] = []
    for chain in chains:
        bumped = ChainCursor.objects.filter(chain=chain).update(links_version=F("links_version") + 1)
        cursor = ChainCursor.objects.filter(chain=chain).first() if bumped else None
        depth = backfill_depth(chain)
        defaults: dict[str, Any] = {"depth": depth, "state": BackfillState.WAITING}
        if cursor is not None:
            lo, hi = _range(cursor.block_number, depth)
            defaults.update(from_block=lo, to_block=hi, next_block=lo, state=BackfillState.QUEUED)
        _, created = WalletBackfill.objects.get_or_create(chain=chain, address=address, defaults=defaults)
        if created:
            started.append(chain.chain_id)
    return started


def start_waiting(*, chain: Chain, cursor_block: int) -> None:
    """A chain's first scan set its cursor: backfills waiting for it get their range."""
    for backfill in WalletBackfill.objects.filter(chain=chain, state=BackfillState.WAITING):
        lo, hi = _range(cursor_block, backfill.depth)
        backfill.from_block, backfill.to_block, backfill.next_block = lo, hi, lo
        backfill.state = BackfillState.QUEUED
        backfill.save(update_fields=["from_block", "to_block", "next_block", "state", "updated_at"])


def extend_for_scan(*, chain: Chain, scanned_with: set[str], watched_now: set[str], last_block: int) -> None:
    """Inside a scan commit (cursor locked): addresses linked after the scan read its set of
    addresses were not looked for in its blocks; their backfills now reach `last_block`."""
    missed = {checksum_lower(a) for a in watched_now - scanned_with}
    if not missed:
        return
    for backfill in WalletBackfill.objects.select_for_update().filter(chain=chain, address__in=missed):
        if backfill.to_block is None:
            backfill.to_block = last_block
            backfill.from_block = backfill.next_block = _range(last_block, backfill.depth)[0]
        elif backfill.to_block < last_block:
            backfill.to_block = last_block
        else:
            continue
        if backfill.state == BackfillState.DONE or backfill.state == BackfillState.WAITING:
            backfill.state = BackfillState.QUEUED
            backfill.finished_at = None
        backfill.save()


# --- running ---------------------------------------------------------------------------


@dataclass
class BackfillRun:
    chain_id: int
    batches: int = 0
    blocks: int = 0
    rows: int = 0
    finished: list[str] = field(default_factory=list)
    error: str = ""
    detail: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Forked(Exception):
    """The batch's blocks disagree with what the live scan holds: read it again."""


def backfill_run(
    *,
    chain_id: int,
    listener: BlockListener | None = None,
    clock: Clock = SYSTEM_CLOCK,
    max_batches: int | None = None,
) -> BackfillRun:
    """Sweep the chain's open backfills (see the module docstring); one run per chain at a time."""
    chain = chain_get(chain_id=chain_id)
    conf = wallets_settings()
    run = BackfillRun(chain_id=chain_id)
    lock_key, token = f"wallets:backfill-lock:{chain_id}", secrets.token_hex(8)
    if not cache.add(lock_key, token, conf.scan_lock_ttl):
        run.error, run.detail = "locked", "another backfill of this chain is running"
        return run
    started = time.perf_counter()
    listener = listener or BlockListener(max_log_range=conf.logs_range)
    progress: dict[str, float] = {}
    forks = 0
    open_set: _OpenSet | None = None
    try:
        head = listener.client(chain).head()
        while (max_batches is None or run.batches < max_batches) and run.blocks < MAX_BLOCKS_PER_RUN:
            cache.touch(lock_key, conf.scan_lock_ttl)
            if open_set is None:
                open_set = _load(chain, run, clock)
            open_set.rows = [b for b in open_set.rows if b.state != BackfillState.DONE]
            if not open_set.rows:
                break
            try:
                _batch(chain, listener, open_set, head, conf.batch_blocks, run, progress, clock)
            except _Reload:
                open_set = None
            except _Forked:
                open_set = None
                forks += 1
                if forks > 3:
                    raise RpcError("the node keeps serving blocks of another fork") from None
    except RpcError as exc:
        run.error, run.detail = exc.code, str(exc)[:500]
        _record_error(chain, run, clock)
        logger.warning("chain %s: backfill stopped: %s %s", chain_id, run.error, run.detail)
    finally:
        if cache.get(lock_key) == token:
            cache.delete(lock_key)
        run.seconds = time.perf_counter() - started
    return run


class _Reload(Exception):
    """Links changed since the open backfills were read: read them again (nothing written)."""


@dataclass
class _OpenSet:
    """The open backfills as last read, valid while the chain's `links_version` is `version`:
    every write that adds or re-opens a backfill (a link, a scan extending a range) bumps
    it under the cursor row lock the batch holds, so the rows need not be read per batch."""

    version: int
    rows: list[WalletBackfill]


def _load(chain: Chain, run: BackfillRun, clock: Clock) -> _OpenSet:
    # The version first: a link committed after this read bumps it, and the batch sees it.
    version = ChainCursor.objects.filter(chain=chain).values_list("links_version", flat=True).first()
    return _OpenSet(version=int(version or 0), rows=_open(chain, run, clock))


def _open(chain: Chain, run: BackfillRun, clock: Clock) -> list[WalletBackfill]:
    """Open backfills, finishing those with nothing left (an empty range)."""
    out = []
    for backfill in WalletBackfill.objects.filter(chain=chain, state__in=OPEN_STATES).order_by("next_block", "id"):
        if backfill.next_block is None or backfill.to_block is None:
            continue
        if backfill.next_block > backfill.to_block:
            with transaction.atomic():
                _finish(chain, [backfill], run, clock)
            continue
        out.append(backfill)
    return out


def _batch(
    chain: Chain,
    listener: BlockListener,
    open_set: _OpenSet,
    head: int,
    size: int,
    run: BackfillRun,
    progress: dict[str, float],
    clock: Clock,
) -> None:
    backfills = open_set.rows
    lo = min(int(b.next_block or 0) for b in backfills)
    hi = min(lo + size - 1, max(int(b.to_block or 0) for b in backfills))
    part = [b for b in backfills if int(b.next_block or 0) <= hi]
    got = listener.fetch_blocks(chain, lo, hi, parent_hash=None)
    if not got.blocks:
        raise RpcError(
            f"block {got.stopped_at} unavailable from the node ({got.stopped})", method="eth_getBlockByNumber"
        )
    blocks = got.blocks
    hi = blocks[-1].number
    watched = {b.address.lower() for b in part}
    batch = build_batch(
        chain=chain,
        listener=listener,
        blocks=blocks,
        watched=watched,
        head=head,
        conf=wallets_settings(),
        watched_nonces=set(),
        history_balances_at=max(int(b.to_block or 0) for b in part),
        traces=_traces(chain),
    )
    if len(batch.blocks) < len(blocks):
        raise _Forked()
    ranges = {b.address.lower(): (int(b.next_block or 0), int(b.to_block or 0)) for b in part}
    frames: list[WalletUpdate] = []
    with transaction.atomic():
        cursor = ChainCursor.objects.select_for_update().filter(chain=chain).first()
        if cursor is not None and cursor.links_version != open_set.version:
            raise _Reload()
        ceiling = cursor.block_number if cursor is not None else hi
        ours = dict(
            ScannedBlock.objects.filter(chain=chain, number__gte=lo, number__lte=hi).values_list("number", "hash")
        )
        if any(ours.get(b.number, b.hash) != b.hash for b in blocks if b.number <= ceiling):
            raise _Forked()

        def mine(address: str, number: int) -> bool:
            first, last = ranges[address.lower()]
            return first <= number <= min(last, ceiling)

        rows = [r for r in batch.rows if mine(r.address, r.block_number)]
        insert_activity(chain=chain, rows=rows)
        skips = [s for s in batch.skips if s.block_number <= ceiling]
        if skips:
            SkippedLog.objects.bulk_create(skips, ignore_conflicts=True, batch_size=500)
        # History's approval state; its warnings are notified when the backfill ends,
        # once the newest approval of each pair is known (not one per old approval).
        approvals_apply(
            chain=chain,
            changes=[a for a in batch.approvals if mine(a.owner, a.block_number)],
            timestamp_ms=blocks[-1].timestamp * 1000,
        )
        found: dict[str, int] = {}
        for row in rows:
            found[row.address.lower()] = found.get(row.address.lower(), 0) + 1
        now, moment = clock.monotonic(), clock.now()
        # Every open backfill starting at or below `hi` is in `part` (the open set is
        # current: checked above, under the cursor lock), so one set-based UPDATE moves them
        # all, and one more per count of rows found adds those (not one UPDATE per backfill).
        by_delta: dict[int, list[int]] = {}
        finished: list[WalletBackfill] = []
        for backfill in part:
            backfill.next_block = min(hi, int(backfill.to_block or 0)) + 1
            delta = found.get(backfill.address.lower(), 0)
            backfill.found += delta
            if backfill.state != BackfillState.RUNNING:
                backfill.state, backfill.started_at = BackfillState.RUNNING, backfill.started_at or moment
            backfill.error = backfill.error_detail = ""
            if delta:
                by_delta.setdefault(delta, []).append(backfill.pk)
            if backfill.next_block > int(backfill.to_block or 0):
                finished.append(backfill)
            elif now - progress.get(backfill.address, float("-inf")) >= PROGRESS_EVERY:
                progress[backfill.address] = now
                frames.append(backfill_update(backfill, chain=chain))
        WalletBackfill.objects.filter(chain=chain, state__in=OPEN_STATES, next_block__lte=hi).update(
            next_block=Least(F("to_block"), Value(hi)) + 1,
            state=BackfillState.RUNNING,
            started_at=Coalesce(F("started_at"), Value(moment)),
            error="",
            error_detail="",
            updated_at=moment,
        )
        for delta, pks in by_delta.items():
            WalletBackfill.objects.filter(pk__in=pks).update(found=F("found") + delta)
        if finished:
            _finish(chain, finished, run, clock)
        publish_updates(frames)
    run.batches += 1
    run.blocks += len(blocks)
    run.rows += len(rows)


def _traces(chain: Chain) -> str:
    """The call-trace method the live scan detected for the chain ("" if none or off)."""
    if chain.traces == "off":
        return ""
    method = ChainCursor.objects.filter(chain=chain).values_list("trace_method", flat=True).first()
    return method if method in METHODS else ""


def _finish(chain: Chain, backfills: list[WalletBackfill], run: BackfillRun, clock: Clock) -> None:
    """Done: the final progress frames, a fresh snapshot each, and the history's warnings."""
    moment = clock.now()
    for backfill in backfills:
        backfill.state, backfill.finished_at = BackfillState.DONE, moment
        backfill.error = backfill.error_detail = ""
    WalletBackfill.objects.filter(pk__in=[b.pk for b in backfills]).update(
        state=BackfillState.DONE, finished_at=moment, error="", error_detail="", updated_at=moment
    )
    addresses = [b.address for b in backfills]
    run.finished.extend(addresses)
    raised = list(
        TokenApproval.objects.filter(chain=chain, owner__in=addresses, notified_at__isnull=True)
        .exclude(warning="")
        .values_list("pk", flat=True)
    )
    notify_on_commit(raised)

    def publish() -> None:
        snapshots = wallet_snapshots(addresses=addresses)
        publish_updates([f for b in backfills for f in (backfill_update(b, chain=chain), snapshots[b.address])])

    transaction.on_commit(publish)


def _record_error(chain: Chain, run: BackfillRun, clock: Clock) -> None:
    WalletBackfill.objects.filter(chain=chain, state__in=OPEN_STATES).update(
        error=run.error, error_detail=run.detail[:2000], updated_at=clock.now()
    )
