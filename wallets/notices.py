"""What wallet events say to their users: the wording and data of their notifications.

The wallets app knows what happened and how to say it; the notifications app (which
depends on this one, never the reverse) stores and delivers each `Notice` as a
notification of `type` with `priority`, idempotent per `dedupe_key`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from .events import TransactionSettled
from .models import Chain, TokenApproval, Wallet
from .payloads import revoke_hint
from .selectors import known_spenders
from .services.approvals import APPROVAL_FOR_ALL_WARNING, UNLIMITED_WARNING, URGENT
from .tokens import token_infos_stored


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification to each of `user_ids` (the fields of a `NotificationSpec`)."""

    user_ids: tuple[int, ...]
    type: str
    title: str
    body: str
    data: dict[str, Any]
    priority: str
    dedupe_key: str


def _short(value: object) -> str:
    text = str(value or "")
    return f"{text[:8]}…{text[-4:]}" if len(text) > 14 else text


def transaction_notice(event: TransactionSettled) -> Notice:
    """`transaction_confirmed` (medium) or `transaction_failed` (high, with the reason),
    idempotent per (outcome, chain, hash): a rescan or a retried task does not notify twice."""
    confirmed = event.outcome == "confirmed"
    data: dict[str, Any] = {
        "chain": event.chain,
        "hash": event.hash,
        "from": event.sender,
        "to": event.recipient,
        "value": event.value,
    }
    if not confirmed:
        data["reason"] = event.reason
    chain, tx = event.chain, _short(event.hash)
    return Notice(
        user_ids=event.user_ids,
        type="transaction_confirmed" if confirmed else "transaction_failed",
        title=f"Transaction {'confirmed' if confirmed else 'failed'}: {tx}",
        body=(
            f"{event.value} from {_short(event.sender)} to {_short(event.recipient)} on chain {chain}"
            if confirmed
            else f"Transaction {tx} on chain {chain} failed: {event.reason or 'unknown reason'}"
        ),
        data=data,
        # A failure needs the user's attention now; a confirmation is routine.
        priority="medium" if confirmed else "high",
        dedupe_key=f"tx:{event.outcome}:{chain}:{event.hash.lower()}",
    )


def owners_to_notify(*, chain: Chain, owner: str) -> list[int]:
    """Users who proved they own `owner` (verified link) on `chain`: watch-only links of an
    address someone else owns see the public warning in the panel, but are not notified."""
    wallets = Wallet.objects.filter(address=owner, watch_only=False).filter(Q(chains=chain) | Q(chains__isnull=True))
    return sorted(set(wallets.values_list("user_id", flat=True)))


def approval_warning_notices(*, approval_ids: Sequence[int]) -> list[tuple[int, Notice]]:
    """(approval id, notice) for each warning among `approval_ids` still active and not yet
    told (`services/approvals.approval_warning_notified` records that it was): a `security_warning`,
    urgent when the spender is not a known contract, idempotent per approval event."""
    out: list[tuple[int, Notice]] = []
    for row in (
        TokenApproval.objects.filter(pk__in=list(approval_ids), notified_at__isnull=True)
        .exclude(warning="")
        .select_related("chain")
    ):
        info = _symbol(row)
        name = known_spenders(chain=row.chain, spenders=[row.spender.lower()]).get(row.spender.lower(), "")
        title, body = _approval_texts(row, symbol=info, spender_name=name)
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
        notice = Notice(
            user_ids=tuple(owners_to_notify(chain=row.chain, owner=row.owner)),
            type="security_warning",
            title=title,
            body=body,
            data=data,
            priority="urgent" if row.level == URGENT else "high",
            dedupe_key=key,
        )
        out.append((row.pk, notice))
    return out


def _symbol(row: TokenApproval) -> str:
    info = token_infos_stored(chain_pk=row.chain_id, token=row.token.lower())
    return info.symbol if info and info.symbol else ""


def _address(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}"


def _approval_texts(row: TokenApproval, *, symbol: str, spender_name: str) -> tuple[str, str]:
    who = spender_name or _address(row.spender)
    what = symbol or _address(row.token)
    unknown = "" if spender_name else " This spender is not a contract we know."
    hint = revoke_hint(token=row.token, spender=row.spender, standard=row.standard)["text"]
    wallet = f"Wallet {_address(row.owner)} on {row.chain.name}"
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
