"""What the service worker receives: a small JSON object, cut to the push size budget.

`{"v": 1, "id": "n:12", "type", "title", "body", "priority", "icon", "url", "tag",
"created_at", "receipt"}`: the service worker shows title/body/icon, opens `url` on a
click and posts `receipt` back (the delivery becomes `delivered`). Only the body is ever
cut (with "…"): the title, link and receipt must arrive whole.
"""

from __future__ import annotations

from typing import Any

import orjson

ELLIPSIS = "…"


def size(payload: dict[str, Any]) -> int:
    return len(orjson.dumps(payload))


def _cut(payload: dict[str, Any], body_bytes: int) -> dict[str, Any]:
    body = str(payload.get("body") or "")
    data = body.encode()[: max(0, body_bytes)].decode(errors="ignore")
    return {**payload, "body": (data.rstrip() + ELLIPSIS) if data != body and data else "", "truncated": True}


def fit(payload: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """The payload itself when it fits, else a copy with the body cut to fit."""
    over = size(payload) - max_bytes
    if over <= 0:
        return payload
    body_len = len(str(payload.get("body") or "").encode())
    smaller = _cut(payload, body_len - over - 16)  # room for the ellipsis, the flag, escapes
    while size(smaller) > max_bytes and smaller.get("body"):
        smaller = _cut(payload, len(str(smaller["body"]).encode()) // 2)
    return smaller


def shrink(payload: dict[str, Any]) -> dict[str, Any] | None:
    """After a 413: half the body; None when there is no body left to cut."""
    body = str(payload.get("body") or "").removesuffix(ELLIPSIS)
    if not body:
        return None
    return _cut({**payload, "body": body}, len(body.encode()) // 2)
