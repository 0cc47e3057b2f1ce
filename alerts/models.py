"""Alert rules and the global revision counter the engines follow."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q

from .choices import Direction, Kind, Mode


class AlertRule(models.Model):
    """One user's rule. `kind`, `symbol`, `threshold`, `direction` and `window` are
    immutable after creation (delete and create instead), so every engine can find a
    rule's place in its index from the row alone."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_rules")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    #: Upper-case symbol; empty for portfolio rules.
    symbol = models.CharField(max_length=20, blank=True)
    #: A price (price kinds), a percent (percent_move) or a value in USD (portfolio kinds).
    threshold = models.DecimalField(max_digits=30, decimal_places=10)
    direction = models.CharField(max_length=10, choices=Direction.choices, default=Direction.EITHER)
    #: percent_move only: the move is measured against the price this long ago.
    window = models.DurationField(null=True, blank=True)
    cooldown = models.DurationField(default=timedelta(hours=1))
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.ONCE)
    expires_at = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    last_triggered_at = models.DateTimeField(null=True, blank=True)
    last_trigger_price = models.DecimalField(max_digits=30, decimal_places=10, null=True, blank=True)
    trigger_count = models.PositiveIntegerField(default=0)
    #: last_triggered_at + cooldown: the atomic claim compares against it.
    next_allowed_at = models.DateTimeField(null=True, blank=True)
    #: Timestamp (ms) of the price batch that last fired the rule: the same batch
    #: evaluated twice (two workers) fires it once, whatever the cooldown.
    last_batch_ts = models.BigIntegerField(null=True, blank=True)
    #: Token of the evaluation that claimed the rule last (claim then read back).
    claim = models.CharField(max_length=32, blank=True, default="")
    #: Global revision of the last change (see AlertsRevision); engines load deltas.
    revision = models.BigIntegerField(default=0)
    #: Soft delete, so engines in other processes learn about it from the delta.
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["user", "-id"], condition=Q(deleted_at__isnull=True), name="alert_user_live"),
            models.Index(fields=["revision"], name="alert_revision"),
            models.Index(
                fields=["symbol", "kind"], condition=Q(active=True, deleted_at__isnull=True), name="alert_live"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.symbol or 'portfolio'} {self.threshold}"


def _new_epoch() -> str:
    return uuid.uuid4().hex


class AlertsRevision(models.Model):
    """One row: incremented (row-locked) in every rule-changing transaction, so the
    revisions engines read are assigned in commit order and none is skipped."""

    value = models.BigIntegerField(default=0)
    #: Changes when the row is recreated (database restored or flushed): engines that
    #: see another epoch reload everything instead of trusting their revision.
    epoch = models.CharField(max_length=32, default=_new_epoch)
