"""Dangerous approvals of linked wallets: classified, kept as current state, raised and cleared.

An ERC-20 `Approval` of 2**256-1 (unlimited) or of more than the owner holds, and an
`ApprovalForAll(true)`, let the spender take the owner's tokens at any later time: the
usual way wallets are drained. Each one from a linked owner becomes a `TokenApproval`
row with a `warning`, a `security` frame on `wallet:{owner}` (with a revoke hint) and,
after commit, an `ApprovalWarningsRaised` event: the notifications app tells the owners
who proved the address (priority high; urgent when the spender is not a `KnownContract`
of the chain; the wording is in `notices.py`). A newer
approval of the same (token, spender) to 0 or `ApprovalForAll(false)` clears it.

State moves only forward by (block, log index), so the live scan and a history
backfill (which reads older blocks later) agree whatever order they run in; a reorg
restores the newest approval left below the fork from the stored activity.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from realtime_project.events import bus

from ..addresses import checksum_lower
from ..choices import ApprovalStandard
from ..events import ApprovalWarningsRaised
from ..logs import UNLIMITED, Event
from ..models import Chain, TokenApproval, WalletActivity
from ..payloads import ApprovalWarning, WalletUpdate, security_update
from ..selectors import known_spenders
from ..tokens import TokenInfo

logger = logging.getLogger("wallets.approvals")


UNLIMITED_WARNING = "unlimited"
ABOVE_BALANCE_WARNING = "above_balance"
APPROVAL_FOR_ALL_WARNING = "approval_for_all"
HIGH, URGENT = "high", "urgent"


@dataclass(frozen=True, slots=True)
class ApprovalChange:
    """One approval event of a watched owner, classified (addresses lowercase)."""

    owner: str
    token: str
    spender: str
    standard: str  # ApprovalStandard
    amount: int  # raw allowance; 1/0 for ApprovalForAll
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    warning: str  # "" when safe
    level: str  # "" when safe
    symbol: str
    decimals: int | None
    spender_name: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.owner, self.token, self.spender, self.standard

    @property
    def position(self) -> tuple[int, int]:
        return self.block_number, self.log_index


def classify(*, standard: str, amount: int, balance: int | None) -> str:
    """The warning an approval deserves ("" when safe).

    `balance` is the owner's balance of the token (None: unknown, no usable balanceOf),
    so "above balance" is only claimed when it is known.
    """
    if standard == ApprovalStandard.OPERATOR:
        return APPROVAL_FOR_ALL_WARNING if amount else ""
    if amount == UNLIMITED:
        return UNLIMITED_WARNING
    if amount > 0 and balance is not None and amount > balance:
        return ABOVE_BALANCE_WARNING
    return ""


def approval_events(events: Iterable[Event]) -> list[Event]:
    """The approval events that a watched address gave (owner side) and that can be dangerous."""
    out = []
    for event in events:
        if event.kind != "approval" or event.address != event.fields.get("owner"):
            continue
        if event.standard == "erc20" or (event.standard == "nft" and "operator" in event.fields):
            out.append(event)
    return out


def classify_events(
    events: Sequence[Event],
    *,
    balances: dict[tuple[str, str], int | None],
    known: dict[str, str],
    infos: dict[str, TokenInfo],
) -> list[ApprovalChange]:
    """`ApprovalChange`s of owner-side approval events; `balances[(owner, token)]` for ERC-20s."""
    out: list[ApprovalChange] = []
    for event in events:
        f = event.fields
        if event.standard == "erc20":
            standard, spender, amount = ApprovalStandard.ERC20, f["spender"], int(f["value"])
        else:
            standard, spender, amount = ApprovalStandard.OPERATOR, f["operator"], int(bool(f["approved"]))
        warning = classify(standard=standard, amount=amount, balance=balances.get((event.address, event.token)))
        info = infos.get(event.token)
        out.append(
            ApprovalChange(
                owner=event.address,
                token=event.token,
                spender=spender,
                standard=standard,
                amount=amount,
                block_number=event.block_number,
                block_hash=event.block_hash,
                tx_hash=event.tx_hash,
                log_index=event.log_index,
                warning=warning,
                level=("" if not warning else HIGH if spender in known else URGENT),
                symbol=info.symbol if info else "",
                decimals=info.decimals if info else None,
                spender_name=known.get(spender, ""),
            )
        )
    return out


def warning_data(change: ApprovalChange) -> ApprovalWarning | None:
    """What an `approval` activity item says about its danger (None when safe)."""
    if not change.warning:
        return None
    return {"reason": change.warning, "level": change.level, "known_spender": bool(change.spender_name)}


@dataclass
class Applied:
    """What `approvals_apply` changed: warnings raised (row ids) and the frames to publish."""

    raised: list[int]
    frames: list[WalletUpdate]


def approvals_apply(*, chain: Chain, changes: Sequence[ApprovalChange], timestamp_ms: int) -> Applied:
    """Move each (owner, token, spender) to its newest approval; call inside the batch's transaction.

    A change older than the stored state (a backfill behind the live scan) is ignored.
    """
    applied = Applied(raised=[], frames=[])
    newest: dict[tuple[str, str, str, str], ApprovalChange] = {}
    for change in changes:
        held = newest.get(change.key)
        if held is None or change.position > held.position:
            newest[change.key] = change
    if not newest:
        return applied
    owners = {checksum_lower(k[0]) for k in newest}
    tokens = {checksum_lower(k[1]) for k in newest}
    stored = {
        (r.owner.lower(), r.token.lower(), r.spender.lower(), r.standard): r
        for r in TokenApproval.objects.select_for_update()
        .select_related("chain")
        .filter(chain=chain, owner__in=owners, token__in=tokens)
    }
    now = timezone.now()
    for key, change in sorted(newest.items(), key=lambda item: item[1].position):
        row = stored.get(key)
        if row is not None and (row.block_number, row.log_index) >= change.position:
            continue
        was = row.warning if row is not None else ""
        if row is None:
            row = TokenApproval(
                chain=chain,
                owner=checksum_lower(change.owner),
                token=checksum_lower(change.token),
                spender=checksum_lower(change.spender),
                standard=change.standard,
            )
        row.amount = Decimal(change.amount)
        row.warning, row.level = change.warning, change.level
        row.block_number, row.block_hash = change.block_number, change.block_hash
        row.tx_hash, row.log_index = change.tx_hash, change.log_index
        if change.warning and not was:
            row.raised_at, row.notified_at = now, None
        elif not change.warning:
            row.raised_at, row.notified_at = None, None
        row.save()
        names = {"symbol": change.symbol, "decimals": change.decimals, "spender_name": change.spender_name}
        if change.warning:
            if not was:
                applied.raised.append(row.pk)
            applied.frames.append(security_update(row, state="active", timestamp_ms=timestamp_ms, **names))
        elif was:
            applied.frames.append(security_update(row, state="cleared", timestamp_ms=timestamp_ms, **names))
    return applied


def notify_on_commit(raised: Sequence[int]) -> None:
    """After commit, `ApprovalWarningsRaised` on the event bus for newly raised warnings (the
    notifications app tells their owners)."""
    if not raised:
        return
    bus.emit(ApprovalWarningsRaised(tuple(raised)))


def approval_warning_notified(*, approval_id: int) -> None:
    """Its owners were told: never again for this approval event."""
    TokenApproval.objects.filter(pk=approval_id, notified_at__isnull=True).update(notified_at=timezone.now())


def approvals_roll_back(*, chain: Chain, ancestor: int, timestamp_ms: int) -> list[WalletUpdate]:
    """After a reorg to `ancestor`: each approval set above it goes back to the newest one
    left at or below it (from the stored activity), or is forgotten. Returns the frames."""
    frames: list[WalletUpdate] = []
    for row in (
        TokenApproval.objects.select_for_update().select_related("chain").filter(chain=chain, block_number__gt=ancestor)
    ):
        was = row.warning
        previous = _newest_stored_approval(row, ancestor)
        if previous is None:
            if was:
                frames.append(_frame(row, "cleared", timestamp_ms))
            row.delete()
            continue
        data = previous.payload.get("data") or {}
        warning = data.get("warning") or {}
        row.amount = Decimal(int(data.get("value_raw") or (1 if data.get("approved") else 0)))
        row.warning, row.level = str(warning.get("reason") or ""), str(warning.get("level") or "")
        row.block_number, row.block_hash = previous.block_number, previous.block_hash
        row.tx_hash, row.log_index = previous.tx_hash, previous.log_index
        if not row.warning:
            row.raised_at = row.notified_at = None
        row.save()
        if row.warning:
            frames.append(_frame(row, "active", timestamp_ms, symbol=str(data.get("symbol") or "")))
        elif was:
            frames.append(_frame(row, "cleared", timestamp_ms, symbol=str(data.get("symbol") or "")))
    return frames


def _frame(row: TokenApproval, state: str, timestamp_ms: int, symbol: str = "") -> WalletUpdate:
    name = known_spenders(chain=row.chain, spenders=[row.spender.lower()]).get(row.spender.lower(), "")
    return security_update(row, state=state, timestamp_ms=timestamp_ms, symbol=symbol, decimals=None, spender_name=name)


def _newest_stored_approval(row: TokenApproval, ancestor: int) -> WalletActivity | None:
    party = Q(payload__data__spender=row.spender) | Q(payload__data__operator=row.spender)
    return (
        WalletActivity.objects.filter(
            chain=row.chain, address=row.owner, kind="approval", token=row.token, block_number__lte=ancestor
        )
        .filter(party)
        .order_by("-block_number", "-log_index")
        .first()
    )
