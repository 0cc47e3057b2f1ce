"""Celery tasks of the alerts app: take plain data, call a service."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from .services.rules import alert_rules_purge_deleted


@shared_task(name="alerts.tasks.purge_deleted_rules", ignore_result=True)
def purge_deleted_rules() -> int:
    """Soft-deleted rows are kept a day so every engine's delta sees the deletion first
    (engines fully reload at least hourly, ALERTS["FULL_RELOAD_SECONDS"])."""
    return alert_rules_purge_deleted(before=timezone.now() - timedelta(days=1))
