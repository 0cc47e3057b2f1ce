"""Queued deliveries as a work queue: claim due rows with a lease, back off on failure."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, QuerySet

from ..choices import DeliveryState
from ..conf import NotificationSettings
from ..models import Delivery

#: Claimed rows are due again after this if the worker died before recording an outcome.
LEASE_SECONDS = 300


def claim(queued: QuerySet[Delivery], now: datetime, limit: int) -> list[Delivery]:
    """Take the due rows (skipping rows another worker holds), lease them, count the attempt."""
    with transaction.atomic():
        ids = list(
            queued.filter(state=DeliveryState.QUEUED, due_at__lte=now)
            .order_by("due_at", "pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return []
        Delivery.objects.filter(pk__in=ids).update(
            due_at=now + timedelta(seconds=LEASE_SECONDS), attempts=F("attempts") + 1, updated_at=now
        )
    return list(
        Delivery.objects.filter(pk__in=ids)
        .select_related("subscription", "notification", "announcement")
        .order_by("pk")
    )


def retry_delay(attempts: int, retry_after: float | None, conf: NotificationSettings) -> float:
    """Full-jitter exponential backoff; the server's Retry-After wins (capped)."""
    if retry_after is not None:
        return min(max(retry_after, 1.0), conf.retry_max_seconds)
    ceiling = min(conf.retry_max_seconds, conf.retry_base_seconds * 2**attempts)
    return random.uniform(min(conf.retry_base_seconds, ceiling) / 2, ceiling)
