"""The schemas the alerts app sends to clients: a rule (REST and socket replies) and the
`price_alert` notification of a fired rule (delivered by the notifications app)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from .choices import Kind
from .index import Taken
from .models import AlertRule


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


class RulePayload(TypedDict):
    id: int
    kind: str
    #: None for portfolio kinds.
    symbol: str | None
    threshold: float
    direction: str
    #: Seconds, percent_move only.
    window: int | None
    #: Seconds.
    cooldown: int
    mode: str
    #: ms since the epoch.
    expires_at: int | None
    active: bool
    last_triggered_at: int | None
    last_trigger_price: float | None
    trigger_count: int
    created_at: int | None


class PriceAlertData(TypedDict, total=False):
    """The `data` of a `price_alert` notification: the first six always, then by kind."""

    rule_id: int
    kind: str
    symbol: str | None
    threshold: float
    direction: str
    #: The batch that fired the rule, ms.
    triggered_at: int
    #: Price kinds and percent_move: the price that fired.
    price: float | None
    #: Price kinds.
    previous_price: float | None
    #: percent_move.
    change_percent: float
    window: int
    #: Portfolio kinds.
    portfolio_value: float


def rule_payload(rule: AlertRule) -> RulePayload:
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


def price_alert(rule: AlertRule, group: Taken, batch_ts: int) -> dict[str, Any]:
    """The `price_alert` notification of a fired rule, with the price that fired it."""
    threshold = float(rule.threshold)
    data: PriceAlertData = {
        "rule_id": rule.pk,
        "kind": rule.kind,
        "symbol": rule.symbol or None,
        "threshold": threshold,
        "direction": rule.direction,
        "triggered_at": batch_ts,
    }
    if rule.kind == Kind.PERCENT_MOVE:
        window = int(rule.window.total_seconds()) if rule.window else 0
        data.update({"price": group.previous, "change_percent": round(group.value, 4), "window": window})
        sign = "+" if group.value >= 0 else ""
        title = f"{rule.symbol} moved {sign}{group.value:.2f}% in {_human(window)}: {group.previous:,.8g}"
    elif rule.kind in (Kind.PORTFOLIO_ABOVE, Kind.PORTFOLIO_BELOW):
        data["portfolio_value"] = group.value
        word = "above" if rule.kind == Kind.PORTFOLIO_ABOVE else "below"
        title = f"Portfolio value {word} {threshold:,.2f}: {group.value:,.2f}"
    else:
        data.update({"price": group.value, "previous_price": group.previous})
        if rule.kind == Kind.PRICE_CROSS:
            word = "crossed above" if group.previous is not None and group.value > group.previous else "crossed below"
        else:
            word = "above" if rule.kind == Kind.PRICE_ABOVE else "below"
        title = f"{rule.symbol} {word} {threshold:,.8g}: {group.value:,.8g}"
    return {
        "type": "price_alert",
        "title": title[:200],
        "data": data,
        "priority": "high",
        "dedupe_key": f"alert:{rule.pk}:{batch_ts}",
    }


def _human(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
