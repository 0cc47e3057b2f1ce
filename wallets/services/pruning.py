"""Housekeeping: stale sign-in challenges and old skip records are deleted."""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.utils import timezone

from ..models import SkippedLog, WalletChallenge


def challenges_prune(*, keep_seconds: int = 86_400) -> int:
    """Delete sign-in challenges that expired, or were used, more than `keep_seconds` ago
    (kept that long for support questions); returns how many were deleted."""
    cutoff = timezone.now() - timedelta(seconds=keep_seconds)
    stale = models.Q(expires_at__lt=cutoff) | models.Q(used_at__lt=cutoff)
    deleted, _ = WalletChallenge.objects.filter(stale).delete()
    return int(deleted)


def skipped_logs_prune(*, keep_days: int = 30) -> int:
    """Delete recorded skip reasons (malformed logs, non-standard tokens) older than
    `keep_days`; returns how many were deleted."""
    deleted, _ = SkippedLog.objects.filter(created_at__lt=timezone.now() - timedelta(days=keep_days)).delete()
    return int(deleted)
