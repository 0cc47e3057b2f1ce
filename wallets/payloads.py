"""WalletUpdate payloads of `wallet:{address}` (the cross-app contract; see docs/wallets.md).

`{"type": "balance"|"transaction"|"approval"|"nft", "address": EIP-55, "chain": int,
"data": {...}, "timestamp": ms}`. Amounts are JSON numbers in token units (`value`) with
the exact integer in raw units as a string (`value_raw`), since wei exceed a double.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .addresses import checksum_lower
from .chaindata import Tx
from .choices import ApprovalStandard, BackfillState
from .logs import UNLIMITED, Event
from .tokens import TokenInfo
from .traces import InternalTransfer

if TYPE_CHECKING:
    from .models import Chain, TokenApproval, WalletBackfill


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


def update(kind: str, address: str, chain_id: int, data: dict[str, Any], timestamp_ms: int) -> dict[str, Any]:
    return {"type": kind, "address": _cs(address), "chain": chain_id, "data": data, "timestamp": timestamp_ms}


def event_update(
    event: Event,
    *,
    chain_id: int,
    token: TokenInfo | None,
    head: int,
    required: int,
    timestamp_ms: int,
) -> dict[str, Any]:
    """The WalletUpdate for one parsed token event of one watched address."""
    f = event.fields
    decimals = token.decimals if token else None
    data: dict[str, Any] = {
        "hash": event.tx_hash,
        "block": event.block_number,
        "block_hash": event.block_hash,
        "log_index": event.log_index,
        "event": event.name,
        "standard": event.standard,
        "token": _cs(event.token),
        "symbol": token.symbol if token else "",
    }
    if event.kind == "transaction":  # ERC-20 Transfer
        status, confirmations = tx_state(event.block_number, head, required)
        data.update(
            status=status,
            confirmations=confirmations,
            required=required,
            **{"from": _cs(f["from"]), "to": _cs(f["to"])},
            value=units(f["value"], decimals),
            value_raw=str(f["value"]),
            decimals=decimals,
            direction=_direction(event.address, f["from"], f["to"]),
        )
    elif event.kind == "nft":
        data.update(
            **{"from": _cs(f["from"]), "to": _cs(f["to"])},
            direction=_direction(event.address, f["from"], f["to"]),
        )
        if "token_id" in f:
            data["token_id"] = str(f["token_id"])
        else:
            data.update(
                operator=_cs(f["operator"]),
                ids=[str(i) for i in f["ids"]],
                values=[str(v) for v in f["values"]],
            )
    else:  # approval
        data["owner"] = _cs(f["owner"])
        if "operator" in f:
            data.update(operator=_cs(f["operator"]), approved=f["approved"])
        elif "token_id" in f:
            data.update(spender=_cs(f["spender"]), token_id=str(f["token_id"]))
        else:
            data.update(
                spender=_cs(f["spender"]),
                value=units(f["value"], decimals),
                value_raw=str(f["value"]),
                decimals=decimals,
                unlimited=f["unlimited"],
            )
    if f.get("mint"):
        data["mint"] = True
    if f.get("burn"):
        data["burn"] = True
    return update(event.kind, event.address, chain_id, data, timestamp_ms)


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
) -> dict[str, Any]:
    status, confirmations = tx_state(block, head, required)
    if not succeeded:
        status = "failed"
    data = {
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
) -> dict[str, Any]:
    """Native value moved inside a contract call (a call trace), as a `transaction` update."""
    status, confirmations = tx_state(block, head, required)
    data = {
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
) -> dict[str, Any]:
    data = {
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


def removed_update(payload: dict[str, Any], *, timestamp_ms: int) -> dict[str, Any]:
    """The correction for an activity item whose block was orphaned by a reorg."""
    payload = stored(payload)
    data = dict(payload.get("data") or {})
    data["removed"] = True
    return {**payload, "data": data, "timestamp": timestamp_ms}


def _direction(address: str, frm: str | None, to: str | None) -> str:
    a = address.lower()
    f, t = (frm or "").lower(), (to or "").lower()
    if f == a and t == a:
        return "self"
    return "out" if f == a else "in"


def transaction_data(tx: Any) -> dict[str, Any]:
    """`transaction` data of a WatchedTransaction (monitor frames, status API, snapshot)."""
    value = int(tx.value or Decimal(0))
    data: dict[str, Any] = {
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


def revoke_hint(*, token: str, spender: str, standard: str) -> dict[str, str]:
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
) -> dict[str, Any]:
    """`data` of a `security` frame (and of the snapshot's `warnings`) for one approval."""
    amount = int(row.amount)
    data: dict[str, Any] = {
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
    }
    if row.standard == ApprovalStandard.ERC20:
        data.update(
            amount=units(amount, decimals),
            amount_raw=str(amount),
            decimals=decimals,
            unlimited=amount == UNLIMITED,
        )
    else:
        data["approved"] = bool(amount)
    data["revoke"] = revoke_hint(token=row.token, spender=row.spender, standard=row.standard)
    return data


def security_update(row: TokenApproval, *, state: str, timestamp_ms: int, **names: Any) -> dict[str, Any]:
    return {
        "type": "security",
        "address": row.owner,
        "chain": row.chain.chain_id,
        "data": security_data(row, state=state, **names),
        "timestamp": timestamp_ms,
    }


# --- history backfill progress (`backfill` frames) ---------------------------------------


def backfill_data(backfill: WalletBackfill, *, chain_id: int) -> dict[str, Any]:
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


def backfill_update(backfill: WalletBackfill, *, chain: Chain) -> dict[str, Any]:
    return {
        "type": "backfill",
        "address": backfill.address,
        "chain": chain.chain_id,
        "data": backfill_data(backfill, chain_id=chain.chain_id),
        "timestamp": int(time.time() * 1000),
    }
