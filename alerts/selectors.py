"""Reads: a user's rules, the live rules an engine loads, changes since a revision."""

from __future__ import annotations

from django.db.models import QuerySet

from .errors import RuleNotFound
from .models import AlertRule, AlertsRevision


def rules_of(user_id: int) -> QuerySet[AlertRule]:
    return AlertRule.objects.filter(user_id=user_id, deleted_at__isnull=True).order_by("-id")


def rule_of(user_id: int, rule_id: int) -> AlertRule:
    rule = rules_of(user_id).filter(pk=rule_id).first()
    if rule is None:
        raise RuleNotFound("no such rule", field="rule_id")
    return rule


def current_revision() -> tuple[str, int]:
    """(epoch, revision) of the rule set; ("", 0) before the first change."""
    row = AlertsRevision.objects.filter(pk=1).values_list("epoch", "value").first()
    return ("", 0) if row is None else (str(row[0]), int(row[1]))


def live_rules() -> QuerySet[AlertRule]:
    """What an engine indexes: active, not deleted (expiry is checked by the engine)."""
    return AlertRule.objects.filter(active=True, deleted_at__isnull=True)


def changed_since(revision: int) -> QuerySet[AlertRule]:
    return AlertRule.objects.filter(revision__gt=revision)
