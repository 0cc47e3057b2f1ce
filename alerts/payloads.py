"""Wire shape of a rule (REST and socket replies)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .models import AlertRule


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def rule_payload(rule: AlertRule) -> dict[str, Any]:
    return {
        "id": rule.pk,
        "kind": rule.kind,
        "symbol": rule.symbol or None,
        "threshold": float(rule.threshold),
        "direction": rule.direction,
        "window": None if rule.window is None else int(rule.window.total_seconds()),
        "cooldown": int(rule.cooldown.total_seconds()),
        "mode": rule.mode,
        "expires_at": _ms(rule.expires_at),
        "active": rule.active,
        "last_triggered_at": _ms(rule.last_triggered_at),
        "last_trigger_price": None if rule.last_trigger_price is None else float(rule.last_trigger_price),
        "trigger_count": rule.trigger_count,
        "created_at": _ms(rule.created_at),
    }
