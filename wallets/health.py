"""Readiness of the chain scanners: lag behind the head and the last error per chain."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from .feedstate import feed_state
from .models import Chain, ChainCursor


def _internal(chain: Chain, cursor: ChainCursor) -> str:
    """Whether internal transfers (value moved inside contract calls) are recorded, and how."""
    if chain.traces == "off":
        return "off (disabled for this chain)"
    if cursor.trace_method == "unsupported":
        return f"unsupported: the node has no call traces ({cursor.trace_detail or 'no detail'})"
    if cursor.trace_method:
        return f"recorded from {cursor.trace_method}"
    return "not checked yet"


def _heads(chain: Chain) -> str:
    """How new blocks reach the scanner: pushed over the WebSocket, or polled (by whom)."""
    state = feed_state(chain_id=chain.chain_id)
    if state is None:
        return "polled by beat (no feed process)"
    if state.get("mode") == "push":
        return "pushed (newHeads)"
    return "polled by the feed process" + (" (socket down)" if chain.ws_url else "")


def chains_health() -> dict[str, Any]:
    """`ok` is false when an enabled chain's last scan failed or is older than 10 poll intervals.

    Per chain: the cursor block, lag behind the node's head, the last error with its
    detail (e.g. `reorg_too_deep`, which needs an operator), and how heads arrive.
    """
    now = timezone.now()
    chains: dict[str, Any] = {}
    ok = True
    for chain in Chain.objects.filter(enabled=True).select_related("cursor"):
        cursor = getattr(chain, "cursor", None)
        if cursor is None:
            chains[str(chain.chain_id)] = {"ok": True, "state": "not_started"}
            continue
        age = (now - cursor.last_scan_at).total_seconds() if cursor.last_scan_at else None
        stale = age is None or age > 10 * max(chain.poll_interval, 1.0)
        lag = (cursor.head_number - cursor.block_number) if cursor.head_number is not None else None
        chain_ok = not cursor.last_error and not stale
        ok = ok and chain_ok
        chains[str(chain.chain_id)] = {
            "ok": chain_ok,
            "block": cursor.block_number,
            "lag": lag,
            "last_scan_age": age,
            "error": cursor.last_error or None,
            "error_detail": cursor.last_error_detail or None,
            "heads": _heads(chain),
            "internal_transfers": _internal(chain, cursor),
        }
    return {"ok": ok, "chains": chains}
