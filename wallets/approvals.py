"""Dangerous approvals of linked wallets: classified, kept as current state, raised and cleared.

An ERC-20 `Approval` of 2**256-1 (unlimited) or of more than the owner holds, and an
`ApprovalForAll(true)`, let the spender take the owner's tokens at any later time: the
usual way wallets are drained. Each one from a linked owner becomes a `TokenApproval`
row with a `warning`, a `security` frame on `wallet:{owner}` (with a revoke hint) and,
after commit, a `security_warning` notification to the owners who proved the address
(priority high; urgent when the spender is not a `KnownContract` of the chain). A newer
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
from typing import Any

from django.db.models import Q
from django.utils import timezone

from .addresses import checksum_lower
from .choices import ApprovalStandard
from .events import UNLIMITED, Event
from .models import Chain, TokenApproval, Wallet, WalletActivity
from .payloads import revoke_hint, security_update
from .selectors import known_spenders
from .services.queue import enqueue_on_commit
from .tokens import TokenInfo, token_infos_stored

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


def warning_data(change: ApprovalChange) -> dict[str, Any] | None:
    """What an `approval` activity item says about its danger (None when safe)."""
    if not change.warning:
        return None
    return {"reason": change.warning, "level": change.level, "known_spender": bool(change.spender_name)}


@dataclass
class Applied:
    """What `approvals_apply` changed: warnings raised (row ids) and the frames to publish."""

    raised: list[int]
    frames: list[dict[str, Any]]


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
    """After commit, the notification task for newly raised warnings (a cross-app event as a task)."""
    if not raised:
        return
    enqueue_on_commit("wallets.tasks.approval_warnings", list(raised))


def approvals_roll_back(*, chain: Chain, ancestor: int, timestamp_ms: int) -> list[dict[str, Any]]:
    """After a reorg to `ancestor`: each approval set above it goes back to the newest one
    left at or below it (from the stored activity), or is forgotten. Returns the frames."""
    frames: list[dict[str, Any]] = []
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


def _frame(row: TokenApproval, state: str, timestamp_ms: int, symbol: str = "") -> dict[str, Any]:
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


def owners_to_notify(*, chain: Chain, owner: str) -> list[int]:
    """Users who proved they own `owner` (verified link) on `chain`: watch-only links of an
    address someone else owns see the public warning in the panel, but are not notified."""
    wallets = Wallet.objects.filter(address=owner, watch_only=False).filter(Q(chains=chain) | Q(chains__isnull=True))
    return sorted(set(wallets.values_list("user_id", flat=True)))


def approval_warnings_send(*, approval_ids: Sequence[int]) -> int:
    """Notify the owners of each still-active warning once; returns notifications created."""
    from notifications.api import InvalidNotification, security_warning

    created = 0
    for row in (
        TokenApproval.objects.filter(pk__in=list(approval_ids), notified_at__isnull=True)
        .exclude(warning="")
        .select_related("chain")
    ):
        info = _symbol(row)
        name = known_spenders(chain=row.chain, spenders=[row.spender.lower()]).get(row.spender.lower(), "")
        title, body = _texts(row, symbol=info, spender_name=name)
        data = {
            "chain": row.chain.chain_id,
            "owner": row.owner,
            "token": row.token,
            "symbol": info,
            "spender": row.spender,
            "spender_name": name or None,
            "reason": row.warning,
            "amount_raw": str(int(row.amount)),
            "hash": row.tx_hash,
            "revoke": revoke_hint(token=row.token, spender=row.spender, standard=row.standard),
        }
        key = f"approval:{row.chain.chain_id}:{row.token.lower()}:{row.spender.lower()}:{row.tx_hash}:{row.log_index}"
        for user_id in owners_to_notify(chain=row.chain, owner=row.owner):
            try:
                result = security_warning(
                    user_id=user_id, title=title, body=body, data=data, urgent=row.level == URGENT, dedupe_key=key
                )
            except InvalidNotification as exc:
                logger.warning("approval warning %s for user %s refused: %s", row.pk, user_id, exc)
                continue
            created += int(result.created)
        TokenApproval.objects.filter(pk=row.pk, notified_at__isnull=True).update(notified_at=timezone.now())
    return created


def _symbol(row: TokenApproval) -> str:
    info = token_infos_stored(chain_pk=row.chain_id, token=row.token.lower())
    return info.symbol if info and info.symbol else ""


def _short(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}"


def _texts(row: TokenApproval, *, symbol: str, spender_name: str) -> tuple[str, str]:
    who = spender_name or _short(row.spender)
    what = symbol or _short(row.token)
    unknown = "" if spender_name else " This spender is not a contract we know."
    hint = revoke_hint(token=row.token, spender=row.spender, standard=row.standard)["text"]
    wallet = f"Wallet {_short(row.owner)} on {row.chain.name}"
    if row.warning == APPROVAL_FOR_ALL_WARNING:
        title = f"{who} may move every NFT of {what} in your wallet"
        body = f"{wallet} gave {row.spender} approval for all of {row.token}.{unknown} {hint}"
    elif row.warning == UNLIMITED_WARNING:
        title = f"Unlimited approval: {who} may spend all your {what}"
        body = f"{wallet} approved {row.spender} to spend an unlimited amount of {row.token}.{unknown} {hint}"
    else:
        title = f"Approval above your balance: {who} may spend your {what}"
        body = (
            f"{wallet} approved {row.spender} to spend more {what} than it holds "
            f"({int(row.amount)} raw units), including whatever arrives later.{unknown} {hint}"
        )
    return title[:200], body
