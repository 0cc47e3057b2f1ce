"""The schema of each payload the wallets app publishes on `wallet:{address}`, and its builder.

- `WalletUpdate`: `{"type", "address": EIP-55, "chain", "data", "timestamp": ms}`, whose
  `data` is, by `type`: `TransferData` or `TransactionData` (`transaction`: a transfer
  seen on chain, or a watched transaction's status), `ApprovalData`, `NftData`,
  `BalanceData`, `SecurityWarning` (`security`), `BackfillProgress` (`backfill`);
- `WalletSnapshot`: the durable-resubscribe snapshot (built by `selectors.wallet_snapshots`).

Amounts are JSON numbers in token units (`value`) with the exact integer in raw units as
a string (`value_raw`), since wei exceed a double. `client/src/stores/types.ts` mirrors
these shapes (`tests/architecture/test_payload_types.py` keeps both in step);
docs/wallets.md describes them.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict, cast

from .addresses import checksum_lower
from .chaindata import Tx
from .choices import ApprovalStandard, BackfillState
from .logs import UNLIMITED, Event
from .tokens import TokenInfo
from .traces import InternalTransfer

if TYPE_CHECKING:
    from .models import Chain, TokenApproval, WalletBackfill


# --- the schemas -------------------------------------------------------------------------
# Keys that are Python keywords (`from`) need the functional TypedDict syntax.


class _Correction(TypedDict, total=False):
    #: Set on the correction of an activity item whose block a reorg orphaned.
    removed: bool


class _Flags(TypedDict, total=False):
    #: From (to) the zero address.
    mint: bool
    burn: bool


_Transfer = TypedDict(
    "_Transfer",
    {
        "hash": str,
        "status": str,
        "confirmations": int,
        "required": int,
        "block": int,
        "block_hash": str,
        #: -1 for native transfers; an internal transfer's position in the call tree.
        "log_index": int,
        #: "erc20", "native" or "internal".
        "standard": str,
        #: EIP-55; None for the native coin.
        "token": str | None,
        "symbol": str,
        "from": str | None,
        "to": str | None,
        "value": float,
        "value_raw": str,
        "decimals": int | None,
        #: "in", "out" or "self".
        "direction": str,
    },
)


class _TransferOptional(_Correction, _Flags, total=False):
    #: ERC-20: the Solidity event name.
    event: str
    #: Native transfers.
    nonce: int
    #: Internal transfers.
    call_type: str
    trace_address: list[int]


class TransferData(_Transfer, _TransferOptional):
    """`transaction` data of a transfer seen on chain (ERC-20, native or internal)."""


class _Event(TypedDict):
    hash: str
    block: int
    block_hash: str
    log_index: int
    event: str
    standard: str
    token: str | None
    symbol: str


_NftParties = TypedDict("_NftParties", {"from": str | None, "to": str | None, "direction": str})


class _NftOptional(_Correction, _Flags, total=False):
    token_id: str
    operator: str | None
    ids: list[str]
    values: list[str]


class NftData(_Event, _NftParties, _NftOptional):
    """`nft` data: an ERC-721 transfer (`token_id`) or an ERC-1155 one (`operator`, `ids`, `values`)."""


class ApprovalWarning(TypedDict):
    """How a dangerous approval is marked on its `approval` activity item."""

    reason: str
    level: str
    known_spender: bool


class _ApprovalOptional(_Correction, total=False):
    spender: str | None
    operator: str | None
    approved: bool
    token_id: str
    value: float
    value_raw: str
    decimals: int | None
    unlimited: bool
    warning: ApprovalWarning


class ApprovalData(_Event, _ApprovalOptional):
    """`approval` data: ERC-20 (`spender`, amounts), ERC-721 (`spender`, `token_id`) or
    `ApprovalForAll` (`operator`, `approved`)."""

    owner: str | None


class BalanceData(_Correction):
    """`balance` data: a balance and what changed it."""

    token: str | None
    symbol: str
    decimals: int | None
    balance: float
    balance_raw: str
    delta: float
    delta_raw: str
    block: int


TransactionData = TypedDict(
    "TransactionData",
    {
        "hash": str,
        #: pending, included, confirmed, failed, dropped or replaced.
        "status": str,
        "confirmations": int,
        "required": int,
        "block": int | None,
        "from": str | None,
        "to": str | None,
        "value": float,
        "value_raw": str,
        "nonce": int | None,
        "chain": int,
        "reason": NotRequired[str],
        #: "api", "pending" or "inclusion".
        "found": NotRequired[str],
        "note": NotRequired[str],
        "replaced_by": NotRequired[str],
    },
)
"""`transaction` data of a watched transaction (its status), also the snapshot's `pending`."""


class RevokeHint(TypedDict):
    """The transaction that revokes an approval, and the same in words."""

    method: str
    to: str
    data: str
    text: str


class _ApprovalAmounts(TypedDict, total=False):
    amount: float
    amount_raw: str
    decimals: int | None
    unlimited: bool
    approved: bool


class SecurityWarning(TypedDict):
    """`security` data (and the snapshot's `warnings`): a dangerous approval raised or cleared."""

    id: str
    kind: Literal["approval"]
    #: "active" or "cleared".
    state: str
    reason: str | None
    level: str | None
    standard: str
    token: str
    symbol: str
    spender: str
    spender_name: str | None
    known_spender: bool
    hash: str
    block: int
    chain: int
    #: ERC-20 approvals.
    amount: NotRequired[float]
    amount_raw: NotRequired[str]
    decimals: NotRequired[int | None]
    unlimited: NotRequired[bool]
    #: Operator approvals.
    approved: NotRequired[bool]
    revoke: RevokeHint


class BackfillProgress(TypedDict):
    """`backfill` data (and the snapshot's and the API's `backfill`): the history read on link."""

    chain: int
    state: str
    from_block: int | None
    to_block: int | None
    blocks_done: int
    blocks_total: int
    percent: float
    found: int
    error: str | None


UpdateData = TransferData | TransactionData | ApprovalData | NftData | BalanceData | SecurityWarning | BackfillProgress
UpdateType = Literal["balance", "transaction", "approval", "nft", "security", "backfill"]


class WalletUpdate(TypedDict):
    """One `message` frame's data on `wallet:{address}`."""

    type: UpdateType
    #: EIP-55.
    address: str
    chain: int
    data: UpdateData
    #: ms.
    timestamp: int


class SnapshotBalance(TypedDict):
    chain: int
    token: str | None
    symbol: str
    balance: float
    balance_raw: str


class WalletSnapshot(TypedDict):
    """The durable-resubscribe payload of `wallet:{address}`, rebuilt from the database."""

    type: Literal["snapshot"]
    address: str
    #: Newest first.
    activity: list[WalletUpdate]
    #: Watched pending or included transactions from or to it (empty on the public part).
    pending: list[TransactionData]
    balances: list[SnapshotBalance]
    #: Dangerous approvals in force, newest first.
    warnings: list[SecurityWarning]
    backfill: list[BackfillProgress]


def units(raw: int, decimals: int | None) -> float:
    """Raw integer amount in token units (a float: a display value, never for arithmetic)."""
    if decimals is None:
        return float(raw)
    return float(Decimal(raw).scaleb(-decimals))


def _cs(address: str | None) -> str | None:
    return None if address is None else checksum_lower(address.lower())


def tx_state(block: int, head: int, required: int) -> tuple[str, int]:
    confirmations = max(0, head - block + 1)
    return ("confirmed" if confirmations >= required else "included"), confirmations


def update(kind: UpdateType, address: str, chain_id: int, data: UpdateData, timestamp_ms: int) -> WalletUpdate:
    return {
        "type": kind,
        "address": checksum_lower(address.lower()),
        "chain": chain_id,
        "data": data,
        "timestamp": timestamp_ms,
    }


def event_update(
    event: Event,
    *,
    chain_id: int,
    token: TokenInfo | None,
    head: int,
    required: int,
    timestamp_ms: int,
) -> WalletUpdate:
    """The WalletUpdate for one parsed token event of one watched address."""
    data: UpdateData
    if event.kind == "transaction":  # ERC-20 Transfer
        data = _transfer_data(event, token, head=head, required=required)
        kind: UpdateType = "transaction"
    elif event.kind == "nft":
        data, kind = _nft_data(event, token), "nft"
    else:
        data, kind = _approval_data(event, token), "approval"
    return update(kind, event.address, chain_id, data, timestamp_ms)


def _event(event: Event, token: TokenInfo | None) -> _Event:
    """The fields every token event's data starts with."""
    return {
        "hash": event.tx_hash,
        "block": event.block_number,
        "block_hash": event.block_hash,
        "log_index": event.log_index,
        "event": event.name,
        "standard": event.standard,
        "token": _cs(event.token),
        "symbol": token.symbol if token else "",
    }


def _mark_mint_burn(fields: dict[str, Any], data: _Flags) -> None:
    if fields.get("mint"):
        data["mint"] = True
    if fields.get("burn"):
        data["burn"] = True


def _transfer_data(event: Event, token: TokenInfo | None, *, head: int, required: int) -> TransferData:
    f = event.fields
    decimals = token.decimals if token else None
    status, confirmations = tx_state(event.block_number, head, required)
    optional: _TransferOptional = {}
    _mark_mint_burn(f, optional)
    return {
        **_event(event, token),
        "status": status,
        "confirmations": confirmations,
        "required": required,
        "from": _cs(f["from"]),
        "to": _cs(f["to"]),
        "value": units(f["value"], decimals),
        "value_raw": str(f["value"]),
        "decimals": decimals,
        "direction": _direction(event.address, f["from"], f["to"]),
        **optional,
    }


def _nft_data(event: Event, token: TokenInfo | None) -> NftData:
    f = event.fields
    optional: _NftOptional
    if "token_id" in f:
        optional = {"token_id": str(f["token_id"])}
    else:
        optional = {
            "operator": _cs(f["operator"]),
            "ids": [str(i) for i in f["ids"]],
            "values": [str(v) for v in f["values"]],
        }
    _mark_mint_burn(f, optional)
    return {
        **_event(event, token),
        "from": _cs(f["from"]),
        "to": _cs(f["to"]),
        "direction": _direction(event.address, f["from"], f["to"]),
        **optional,
    }


def _approval_data(event: Event, token: TokenInfo | None) -> ApprovalData:
    f = event.fields
    optional: _ApprovalOptional
    if "operator" in f:
        optional = {"operator": _cs(f["operator"]), "approved": f["approved"]}
    elif "token_id" in f:
        optional = {"spender": _cs(f["spender"]), "token_id": str(f["token_id"])}
    else:
        decimals = token.decimals if token else None
        optional = {
            "spender": _cs(f["spender"]),
            "value": units(f["value"], decimals),
            "value_raw": str(f["value"]),
            "decimals": decimals,
            "unlimited": f["unlimited"],
        }
    return {**_event(event, token), "owner": _cs(f["owner"]), **optional}


def native_update(
    tx: Tx,
    *,
    address: str,
    chain_id: int,
    symbol: str,
    block: int,
    block_hash: str,
    head: int,
    required: int,
    succeeded: bool,
    timestamp_ms: int,
) -> WalletUpdate:
    status, confirmations = tx_state(block, head, required)
    if not succeeded:
        status = "failed"
    data: TransferData = {
        "hash": tx.hash,
        "status": status,
        "confirmations": confirmations,
        "required": required,
        "block": block,
        "block_hash": block_hash,
        "log_index": -1,
        "standard": "native",
        "token": None,
        "symbol": symbol,
        "from": _cs(tx.sender),
        "to": _cs(tx.to),
        "value": units(tx.value, 18),
        "value_raw": str(tx.value),
        "decimals": 18,
        "nonce": tx.nonce,
        "direction": _direction(address, tx.sender, tx.to),
    }
    return update("transaction", address, chain_id, data, timestamp_ms)


def internal_update(
    transfer: InternalTransfer,
    *,
    address: str,
    chain_id: int,
    symbol: str,
    block: int,
    block_hash: str,
    head: int,
    required: int,
    timestamp_ms: int,
) -> WalletUpdate:
    """Native value moved inside a contract call (a call trace), as a `transaction` update."""
    status, confirmations = tx_state(block, head, required)
    data: TransferData = {
        "hash": transfer.tx_hash,
        "status": status,
        "confirmations": confirmations,
        "required": required,
        "block": block,
        "block_hash": block_hash,
        "log_index": transfer.index,
        "standard": "internal",
        "call_type": transfer.call_type,
        "trace_address": list(transfer.trace_address),
        "token": None,
        "symbol": symbol,
        "from": _cs(transfer.sender),
        "to": _cs(transfer.to),
        "value": units(transfer.value, 18),
        "value_raw": str(transfer.value),
        "decimals": 18,
        "direction": _direction(address, transfer.sender, transfer.to),
    }
    return update("transaction", address, chain_id, data, timestamp_ms)


def balance_update(
    *,
    address: str,
    chain_id: int,
    token: str,
    symbol: str,
    decimals: int | None,
    previous: int,
    current: int,
    block: int,
    timestamp_ms: int,
) -> WalletUpdate:
    data: BalanceData = {
        "token": _cs(token) if token else None,
        "symbol": symbol,
        "decimals": decimals,
        "balance": units(current, decimals),
        "balance_raw": str(current),
        "delta": units(current - previous, decimals),
        "delta_raw": str(current - previous),
        "block": block,
    }
    return update("balance", address, chain_id, data, timestamp_ms)


#: JSON numbers a client (and the gateway's encoder) can take as integers.
_INT_RANGE = 2**63


def stored(payload: Any) -> Any:
    """A payload as read back from the database, made publishable again.

    PostgreSQL's jsonb prints a float such as 1.16e77 (the display value of an unlimited
    approval) as an integer of 78 digits, which JSON parsers then read as an int that
    overflows a 64-bit encoder. Those come back as floats, as they were published.
    """
    if isinstance(payload, dict):
        return {k: stored(v) for k, v in payload.items()}
    if isinstance(payload, list):
        return [stored(v) for v in payload]
    if isinstance(payload, int) and not isinstance(payload, bool) and not -_INT_RANGE <= payload < _INT_RANGE:
        return float(payload)
    return payload


def removed_update(payload: Any, *, timestamp_ms: int) -> WalletUpdate:
    """The correction for an activity item (a stored `WalletUpdate`) whose block was
    orphaned by a reorg."""
    payload = stored(payload)
    data = dict(payload.get("data") or {})
    data["removed"] = True
    # The stored update as it was published (keys and their order), with its data marked.
    return cast(WalletUpdate, {**payload, "data": data, "timestamp": timestamp_ms})


def _direction(address: str, frm: str | None, to: str | None) -> str:
    a = address.lower()
    f, t = (frm or "").lower(), (to or "").lower()
    if f == a and t == a:
        return "self"
    return "out" if f == a else "in"


def transaction_data(tx: Any) -> TransactionData:
    """`transaction` data of a WatchedTransaction (monitor frames, status API, snapshot)."""
    value = int(tx.value or Decimal(0))
    data: TransactionData = {
        "hash": tx.hash,
        "status": tx.status,
        "confirmations": tx.confirmations,
        "required": tx.required,
        "block": tx.block_number,
        "from": tx.from_address or None,
        "to": tx.to_address or None,
        "value": units(value, 18),
        "value_raw": str(value),
        "nonce": tx.nonce,
        "chain": tx.chain.chain_id,
    }
    if tx.reason:
        data["reason"] = tx.reason
    if getattr(tx, "found", ""):
        data["found"] = tx.found
    if getattr(tx, "note", ""):
        data["note"] = tx.note
    if tx.replaced_by:
        data["replaced_by"] = tx.replaced_by
    return data


# --- approvals and their warnings (`security` frames) -----------------------------------

#: Calls a revoke hint spells out.
APPROVE_SELECTOR = "0x095ea7b3"  # approve(address,uint256)
SET_APPROVAL_FOR_ALL_SELECTOR = "0xa22cb465"  # setApprovalForAll(address,bool)


def revoke_hint(*, token: str, spender: str, standard: str) -> RevokeHint:
    """The transaction that revokes an approval (for a wallet UI) and the same in words."""
    cs_token, cs_spender = checksum_lower(token.lower()), checksum_lower(spender.lower())
    padded = "0" * 24 + spender.lower()[2:]
    if standard == ApprovalStandard.OPERATOR:
        return {
            "method": f"setApprovalForAll({cs_spender}, false)",
            "to": cs_token,
            "data": SET_APPROVAL_FOR_ALL_SELECTOR + padded + "0" * 64,
            "text": f"Revoke it: call setApprovalForAll({cs_spender}, false) on the collection {cs_token} "
            "from this wallet (a revoke tool such as revoke.cash does it for you).",
        }
    return {
        "method": f"approve({cs_spender}, 0)",
        "to": cs_token,
        "data": APPROVE_SELECTOR + padded + "0" * 64,
        "text": f"Revoke it: call approve({cs_spender}, 0) on the token {cs_token} from this wallet "
        "(a revoke tool such as revoke.cash does it for you).",
    }


def security_data(
    row: TokenApproval, *, state: str, symbol: str, decimals: int | None, spender_name: str
) -> SecurityWarning:
    """`data` of a `security` frame (and of the snapshot's `warnings`) for one approval."""
    amount = int(row.amount)
    amounts: _ApprovalAmounts
    if row.standard == ApprovalStandard.ERC20:
        amounts = {
            "amount": units(amount, decimals),
            "amount_raw": str(amount),
            "decimals": decimals,
            "unlimited": amount == UNLIMITED,
        }
    else:
        amounts = {"approved": bool(amount)}
    return {
        "id": f"approval:{row.chain.chain_id}:{row.token.lower()}:{row.spender.lower()}:{row.standard}",
        "kind": "approval",
        "state": state,
        "reason": row.warning or None,
        "level": row.level or None,
        "standard": row.standard,
        "token": row.token,
        "symbol": symbol,
        "spender": row.spender,
        "spender_name": spender_name or None,
        "known_spender": bool(spender_name),
        "hash": row.tx_hash,
        "block": row.block_number,
        "chain": row.chain.chain_id,
        **amounts,
        "revoke": revoke_hint(token=row.token, spender=row.spender, standard=row.standard),
    }


def security_update(row: TokenApproval, *, state: str, timestamp_ms: int, **names: Any) -> WalletUpdate:
    return {
        "type": "security",
        "address": row.owner,
        "chain": row.chain.chain_id,
        "data": security_data(row, state=state, **names),
        "timestamp": timestamp_ms,
    }


# --- history backfill progress (`backfill` frames) ---------------------------------------


def backfill_data(backfill: WalletBackfill, *, chain_id: int) -> BackfillProgress:
    """Progress of one backfill (the `backfill` frame's data, the API, the snapshot)."""
    total = done = 0
    if backfill.from_block is not None and backfill.to_block is not None:
        total = int(backfill.to_block) - int(backfill.from_block) + 1
        done = min(total, max(0, int(backfill.next_block or backfill.from_block) - int(backfill.from_block)))
    if backfill.state == BackfillState.DONE:
        done = total
    return {
        "chain": chain_id,
        "state": backfill.state,
        "from_block": backfill.from_block,
        "to_block": backfill.to_block,
        "blocks_done": done,
        "blocks_total": total,
        "percent": 100.0 if backfill.state == BackfillState.DONE else round(100.0 * done / total, 1) if total else 0.0,
        "found": backfill.found,
        "error": backfill.error or None,
    }


def backfill_update(backfill: WalletBackfill, *, chain: Chain) -> WalletUpdate:
    return {
        "type": "backfill",
        "address": backfill.address,
        "chain": chain.chain_id,
        "data": backfill_data(backfill, chain_id=chain.chain_id),
        "timestamp": int(time.time() * 1000),
    }
