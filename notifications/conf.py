"""The `NOTIFICATIONS` setting: documented defaults, overridable in settings and by env vars."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Seconds a burst of low-priority notifications of one type is held before it is
    # delivered (one item as itself, several as one digest). Long enough to catch a
    # burst (a marketplace sweep), short enough that "low" still feels live.
    "DIGEST_WINDOW": float(os.environ.get("NOTIFICATIONS_DIGEST_WINDOW", "60")),
    # Items listed inside a digest's `data.items` (the count is always exact).
    "DIGEST_MAX_ITEMS": 20,
    # Notifications in a (re)subscriber's snapshot (the protocol contract says <= 50).
    "SNAPSHOT_SIZE": 50,
    # Page size of the REST list (cursor pagination) and its upper bound.
    "PAGE_SIZE": 50,
    "MAX_PAGE_SIZE": 200,
    # Celery queue for this app's tasks; None: the default queue (tests use their own).
    "CELERY_QUEUE": os.environ.get("NOTIFICATIONS_CELERY_QUEUE") or None,
    # Batched items (the raw members of digests) are kept this long for dedupe/audit.
    "BATCHED_ITEM_RETENTION_DAYS": 30,
}


@dataclass(frozen=True)
class NotificationSettings:
    digest_window: float
    digest_max_items: int
    snapshot_size: int
    page_size: int
    max_page_size: int
    celery_queue: str | None
    batched_item_retention_days: int


def notification_settings() -> NotificationSettings:
    """Read on every call (cheap) so `override_settings` in tests takes effect."""
    merged = {**DEFAULTS, **getattr(settings, "NOTIFICATIONS", {})}
    return NotificationSettings(
        digest_window=float(merged["DIGEST_WINDOW"]),
        digest_max_items=int(merged["DIGEST_MAX_ITEMS"]),
        snapshot_size=int(merged["SNAPSHOT_SIZE"]),
        page_size=int(merged["PAGE_SIZE"]),
        max_page_size=int(merged["MAX_PAGE_SIZE"]),
        celery_queue=merged["CELERY_QUEUE"] or None,
        batched_item_retention_days=int(merged["BATCHED_ITEM_RETENTION_DAYS"]),
    )
