"""Client input (REST body or socket frame) to `validate_rule` arguments.

Times arrive as ms since the epoch (the protocol's convention) or ISO 8601 strings;
durations (`window`, `cooldown`) as seconds.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from .errors import InvalidRule

FIELDS = {"kind", "symbol", "threshold", "direction", "window", "cooldown", "mode", "expires_at"}


def parse_time(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidRule(f"{field} must be ms since the epoch or an ISO 8601 time", field=field)
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or not 0 < value < 1e14:
            raise InvalidRule(f"{field} is out of range", field=field)
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None or parsed.tzinfo is None:
            raise InvalidRule(f"{field} must be an ISO 8601 time with a timezone", field=field)
        return parsed
    raise InvalidRule(f"{field} must be ms since the epoch or an ISO 8601 time", field=field)


def parse_create(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRule("expected an object")
    unknown = set(body) - FIELDS
    if unknown:
        raise InvalidRule(f"unknown field {sorted(unknown)[0]}", field=sorted(unknown)[0])
    for required in ("kind", "threshold"):
        if required not in body:
            raise InvalidRule(f"{required} is required", field=required)
    out = dict(body)
    out["expires_at"] = parse_time(body.get("expires_at"), "expires_at")
    out.setdefault("symbol", "")
    if out["symbol"] is None:
        out["symbol"] = ""
    return out
