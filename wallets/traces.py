"""Internal transfers: native value moved inside contract calls, from the node's call traces.

A transaction's own `value` is its top-level transfer (a native transfer row); a contract
paying out, a router forwarding ETH, a `selfdestruct` beneficiary move value in nested
calls that no log and no transaction field shows. Two trace APIs give them:

- geth and anvil: `debug_traceBlockByNumber(n, {"tracer": "callTracer"})`, a call tree
  per transaction (`calls`, `type`, `from`, `to`, `value`, `error`);
- Erigon, Nethermind, OpenEthereum, anvil: `trace_block(n)`, a flat list per block with
  `traceAddress` (the path in the tree), `action` and `error`.

Both are walked in the same pre-order, so a nested call gets the same `index` (its
position in the transaction's call tree, the top-level call being 0) whichever API gave
it: the natural key of its row. A call that failed moved nothing, nor did the calls
below it. DELEGATECALL/STATICCALL never move value; CALLCODE moves it to the caller
itself. Parsing is pure (no I/O) and never raises on a malformed trace: it is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

DEBUG_TRACE = "debug_traceBlockByNumber"
TRACE_BLOCK = "trace_block"
METHODS = (DEBUG_TRACE, TRACE_BLOCK)
UNSUPPORTED = "unsupported"
#: How a node says it has no such method (EIP-1474 -32601, and the texts nodes use).
UNSUPPORTED_HINTS = ("not found", "does not exist", "not available", "not supported", "unsupported", "unknown method")
#: Call types that move value to `to`.
VALUE_CALLS = frozenset({"CALL", "CREATE", "CREATE2", "SELFDESTRUCT"})


@dataclass(frozen=True, slots=True)
class InternalTransfer:
    tx_hash: str
    index: int  # pre-order position in the transaction's call tree (0 = the transaction itself)
    sender: str  # lowercase
    to: str  # lowercase
    value: int
    call_type: str  # CALL, CREATE, CREATE2, SELFDESTRUCT
    trace_address: tuple[int, ...]


def _int(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value:
        return int(value, 16) if value.startswith("0x") else int(value)
    return 0


def _addr(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) != 42 or not value.startswith("0x"):
        return None
    return value.lower()


def from_call_tracer(result: Any) -> list[InternalTransfer]:
    """Internal transfers in a `debug_traceBlockByNumber` callTracer result (one block)."""
    out: list[InternalTransfer] = []
    if not isinstance(result, list):
        return out
    for item in result:
        if not isinstance(item, dict):
            continue
        tx_hash, root = item.get("txHash"), item.get("result")
        if not isinstance(tx_hash, str) or not isinstance(root, dict):
            continue
        out.extend(_walk(tx_hash.lower(), root))
    return out


def _walk(tx_hash: str, root: dict[str, Any]) -> Iterator[InternalTransfer]:
    counter = 0
    stack: list[tuple[dict[str, Any], tuple[int, ...]]] = [(root, ())]
    while stack:
        frame, path = stack.pop()
        index = counter
        counter += 1
        children = frame.get("calls") or []
        if frame.get("error"):
            # Failed: no value moved here or below; the subtree still takes its indexes.
            counter += _size(children)
            continue
        if index > 0:
            transfer = _transfer(tx_hash, index, path, str(frame.get("type", "")).upper(), frame)
            if transfer is not None:
                yield transfer
        if isinstance(children, list):
            for i, child in reversed(list(enumerate(children))):
                if isinstance(child, dict):
                    stack.append((child, (*path, i)))


def _size(children: Any) -> int:
    if not isinstance(children, list):
        return 0
    return sum(1 + _size(c.get("calls") or []) for c in children if isinstance(c, dict))


def _transfer(
    tx_hash: str, index: int, path: tuple[int, ...], kind: str, frame: dict[str, Any]
) -> InternalTransfer | None:
    if kind not in VALUE_CALLS:
        return None
    try:
        value = _int(frame.get("value"))
    except ValueError:
        return None
    sender, to = _addr(frame.get("from")), _addr(frame.get("to"))
    if value <= 0 or sender is None or to is None:
        return None
    return InternalTransfer(tx_hash, index, sender, to, value, kind, path)


def from_trace_block(result: Any) -> list[InternalTransfer]:
    """Internal transfers in a `trace_block` result (Parity-style flat traces of one block)."""
    out: list[InternalTransfer] = []
    if not isinstance(result, list):
        return out
    by_tx: dict[str, list[dict[str, Any]]] = {}
    for item in result:
        if isinstance(item, dict) and isinstance(item.get("transactionHash"), str):
            by_tx.setdefault(item["transactionHash"].lower(), []).append(item)
    for tx_hash, traces in by_tx.items():
        failed: list[tuple[int, ...]] = []
        for index, trace in enumerate(traces):  # listed in pre-order
            raw_path = trace.get("traceAddress")
            if not isinstance(raw_path, list):
                continue
            path = tuple(int(p) for p in raw_path if isinstance(p, int))
            if trace.get("error"):
                failed.append(path)
                continue
            if not path or any(path[: len(f)] == f for f in failed):
                continue
            action = trace.get("action") or {}
            kind = str(trace.get("type", "")).lower()
            if kind == "call":
                call_type = str(action.get("callType", "call")).upper()
                frame = {"from": action.get("from"), "to": action.get("to"), "value": action.get("value")}
            elif kind == "create":
                call_type = "CREATE"
                frame = {"from": action.get("from"), "to": (trace.get("result") or {}).get("address"),
                         "value": action.get("value")}  # fmt: skip
            elif kind in ("suicide", "selfdestruct"):
                call_type = "SELFDESTRUCT"
                frame = {
                    "from": action.get("address"),
                    "to": action.get("refundAddress"),
                    "value": action.get("balance"),
                }
            else:
                continue
            transfer = _transfer(tx_hash, index, path, call_type, frame)
            if transfer is not None:
                out.append(transfer)
    return out


def parse(method: str, result: Any) -> list[InternalTransfer]:
    return from_call_tracer(result) if method == DEBUG_TRACE else from_trace_block(result)


def params(method: str, number: int) -> list[Any]:
    if method == DEBUG_TRACE:
        return [hex(number), {"tracer": "callTracer"}]
    return [hex(number)]


def says_unsupported(message: str, code: Any = None) -> bool:
    return code == -32601 or any(h in message.lower() for h in UNSUPPORTED_HINTS)
