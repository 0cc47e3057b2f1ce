"""Rule writes: create, update and delete, each bumping the global revision (the engines
in every process follow it), and the purge of soft-deleted rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F

from ..choices import Mode
from ..conf import alert_settings
from ..errors import InvalidRule, RuleLimitExceeded, RuleNotFound
from ..models import AlertRule, AlertsRevision
from ..validation import RuleInput, parse_seconds


def revision_bump() -> int:
    """Next global revision. The UPDATE row-locks the counter until commit, so
    revisions become visible in order and an engine reading `> seen` misses none."""
    updated = AlertsRevision.objects.filter(pk=1).update(value=F("value") + 1)
    if not updated:
        try:
            with transaction.atomic():
                AlertsRevision.objects.create(pk=1, value=1)
        except IntegrityError:
            AlertsRevision.objects.filter(pk=1).update(value=F("value") + 1)
    return int(AlertsRevision.objects.values_list("value", flat=True).get(pk=1))


def alert_rule_create(*, user_id: int, rule: RuleInput) -> AlertRule:
    """Create a validated rule within the user's limit (the user row is locked, so two
    concurrent creates cannot both pass the count)."""
    limit = alert_settings().max_rules_per_user
    with transaction.atomic():
        # The revision row's lock comes first: it serialises rule writes (so the count
        # below cannot race) and never upgrades a read lock (SQLite "database is locked").
        revision = revision_bump()
        user = get_user_model().objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            raise InvalidRule("unknown user", field="user")
        if AlertRule.objects.filter(user_id=user_id, deleted_at__isnull=True).count() >= limit:
            raise RuleLimitExceeded(f"at most {limit} alert rules per user; delete one first")
        return AlertRule.objects.create(
            user_id=user_id,
            kind=rule.kind,
            symbol=rule.symbol,
            threshold=rule.threshold,
            direction=rule.direction,
            window=rule.window,
            cooldown=rule.cooldown,
            mode=rule.mode,
            expires_at=rule.expires_at,
            revision=revision,
        )


def alert_rule_update(*, user_id: int, rule_id: int, changes: dict[str, Any], now: datetime) -> AlertRule:
    """Change the mutable fields (active, mode, cooldown, expires_at); the rest is the
    rule's identity in every index: delete and create to change it."""
    allowed = {"active", "mode", "cooldown", "expires_at"}
    unknown = set(changes) - allowed
    if unknown:
        raise InvalidRule(f"only {', '.join(sorted(allowed))} can change", field=sorted(unknown)[0])
    with transaction.atomic():
        revision = revision_bump()  # first: the write lock before any read (see create)
        rule = (
            AlertRule.objects.select_for_update().filter(pk=rule_id, user_id=user_id, deleted_at__isnull=True).first()
        )
        if rule is None:
            raise RuleNotFound("no such rule", field="rule_id")
        if "active" in changes:
            if not isinstance(changes["active"], bool):
                raise InvalidRule("active must be true or false", field="active")
            rule.active = changes["active"]
        if "mode" in changes:
            if changes["mode"] not in Mode.values:
                raise InvalidRule("mode must be once or repeat", field="mode")
            rule.mode = changes["mode"]
        if "cooldown" in changes:
            seconds = parse_seconds(changes["cooldown"], "cooldown")
            if seconds is None or not 0 <= seconds <= alert_settings().max_cooldown:
                raise InvalidRule("cooldown out of range", field="cooldown")
            rule.cooldown = timedelta(seconds=seconds)
        if "expires_at" in changes:
            expires = changes["expires_at"]
            if expires is not None and (not isinstance(expires, datetime) or expires <= now):
                raise InvalidRule("expires_at must be in the future", field="expires_at")
            rule.expires_at = expires
        rule.revision = revision
        rule.save()
    return rule


def alert_rule_delete(*, user_id: int, rule_id: int, now: datetime) -> AlertRule:
    """Soft delete, so every engine's next delta removes it from its index."""
    with transaction.atomic():
        revision = revision_bump()  # first: the write lock before any read (see create)
        rule = (
            AlertRule.objects.select_for_update().filter(pk=rule_id, user_id=user_id, deleted_at__isnull=True).first()
        )
        if rule is None:
            raise RuleNotFound("no such rule", field="rule_id")
        rule.deleted_at = now
        rule.active = False
        rule.revision = revision
        rule.save(update_fields=["deleted_at", "active", "revision", "updated_at"])
    return rule


def alert_rules_purge_deleted(*, before: datetime) -> int:
    deleted, _ = AlertRule.objects.filter(deleted_at__lt=before).delete()
    return deleted
