"""The atomic claim that fires rules: cooldown, `once` and one fire per batch, enforced
in the database so a rule fires once whichever engine matched it."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Case, DateTimeField, ExpressionWrapper, F, Q, Value, When

from ..choices import Mode
from ..models import AlertRule

#: Claims are sent in chunks (SQLite limits bound parameters per statement).
CLAIM_CHUNK = 500


def alert_rules_claim(
    *,
    rule_ids: list[int],
    batch_ts: int,
    now: datetime,
    prices: dict[int, float],
    not_fired_after: dict[int, int] | None = None,
) -> list[AlertRule]:
    """Atomically claim the rules that may fire now; returns the claimed rows.

    One conditional UPDATE per chunk: active, not deleted, not expired, out of
    cooldown (`next_allowed_at <= now`) and not fired by this batch or, for rules in
    `not_fired_after` (crossings), by any batch after the given one (the move the
    crossing was detected on started there: another worker that saw part of that move
    may have fired it already). A concurrent evaluation blocks on the row lock and then
    finds the condition false, so a rule fires once. Must run inside the caller's
    transaction (with the notifications).
    """
    token = uuid.uuid4().hex
    cooldown_end = ExpressionWrapper(Value(now) + F("cooldown"), output_field=DateTimeField())
    bounds: dict[int, list[int]] = {}
    for rule_id in rule_ids:
        bound = batch_ts - 1
        if not_fired_after and rule_id in not_fired_after:
            bound = min(bound, not_fired_after[rule_id])
        bounds.setdefault(bound, []).append(rule_id)
    for bound, ids in bounds.items():
        for start in range(0, len(ids), CLAIM_CHUNK):
            _claim_chunk(ids[start : start + CLAIM_CHUNK], bound, token, batch_ts, now, cooldown_end)
    claimed: list[AlertRule] = []
    for start in range(0, len(rule_ids), CLAIM_CHUNK):
        chunk = rule_ids[start : start + CLAIM_CHUNK]
        claimed += list(AlertRule.objects.filter(pk__in=chunk, claim=token))
    # One UPDATE per distinct triggering price (rules of one bucket share it).
    by_price: dict[float, list[int]] = {}
    for rule in claimed:
        price = prices.get(rule.pk)
        if price is not None:
            rule.last_trigger_price = _price_decimal(price)
            by_price.setdefault(price, []).append(rule.pk)
    for price, ids in by_price.items():
        AlertRule.objects.filter(pk__in=ids).update(last_trigger_price=_price_decimal(price))
    return claimed


def _claim_chunk(chunk: list[int], bound: int, token: str, batch_ts: int, now: datetime, cooldown_end: Any) -> None:
    AlertRule.objects.filter(pk__in=chunk, active=True, deleted_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now),
        Q(next_allowed_at__isnull=True) | Q(next_allowed_at__lte=now),
        Q(last_batch_ts__isnull=True) | Q(last_batch_ts__lte=bound),
    ).update(
        claim=token,
        last_triggered_at=now,
        last_batch_ts=batch_ts,
        trigger_count=F("trigger_count") + 1,
        next_allowed_at=cooldown_end,
        active=Case(When(mode=Mode.ONCE, then=Value(False)), default=Value(True)),
    )


def _price_decimal(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(Decimal("1e-10"))
