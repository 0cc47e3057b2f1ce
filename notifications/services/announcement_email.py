"""Urgent and high staff announcements by email, to recipients whose announcement email is on.

An announcement is a notification in everyone's inbox (`a:<id>`), so it follows the
same rule as a personal one: urgent/high, email on for `system_announcement` (the
user's choice, else staff's default in the admin, else off), then an email after the
grace period unless the user read or dismissed it, has an open socket, is muted or in
quiet hours (checked when it is due, by `email.email_due`). Publishing queues one
`Delivery` row per recipient; the rows are the work queue, as for every email.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from .. import metrics, selectors
from ..choices import Audience, DeliveryChannel, DeliveryState, NotificationType
from ..conf import notification_settings
from ..models import Announcement, AnnouncementReceipt, Delivery, NotificationPreference
from ..policy import EMAIL_PRIORITIES
from .queue import enqueue_quietly

#: Rows written per INSERT (an announcement to everyone can mean many recipients).
BATCH = 1000


def _recipients(announcement: Announcement) -> QuerySet[Any, int]:
    """User ids of the audience whose email for announcements is on and who have an address."""
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    if announcement.audience != Audience.EVERYONE:
        targeted = AnnouncementReceipt.objects.filter(announcement=announcement, targeted=True).values("user_id")
        users = users.filter(pk__in=targeted)
    choices = NotificationPreference.objects.filter(
        type=NotificationType.SYSTEM_ANNOUNCEMENT, channel=DeliveryChannel.EMAIL
    )
    if selectors.type_defaults()[(NotificationType.SYSTEM_ANNOUNCEMENT, DeliveryChannel.EMAIL)]:
        users = users.exclude(pk__in=choices.filter(enabled=False).values("user_id"))
    else:
        users = users.filter(pk__in=choices.filter(enabled=True).values("user_id"))
    already = Delivery.objects.filter(announcement=announcement, channel=DeliveryChannel.EMAIL).values("user_id")
    return users.exclude(pk__in=already).order_by("pk").values_list("pk", flat=True)


def _batches(ids: Iterator[int]) -> Iterator[list[int]]:
    batch: list[int] = []
    for uid in ids:
        batch.append(uid)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def announcement_email_start(*, announcement_id: int, now: datetime) -> int:
    """Queue the emails of a published urgent/high announcement (due after the grace
    period); idempotent: a recipient who already has a row gets none. Returns rows queued."""
    announcement = Announcement.objects.filter(pk=announcement_id, published_at__isnull=False).first()
    if announcement is None or announcement.priority not in EMAIL_PRIORITIES:
        return 0
    if announcement.expires_at is not None and announcement.expires_at <= now:
        return 0
    grace = notification_settings().email_grace_seconds
    due = now + timedelta(seconds=grace)
    queued = 0
    for batch in _batches(_recipients(announcement).iterator(chunk_size=BATCH)):
        Delivery.objects.bulk_create(
            [
                Delivery(
                    announcement=announcement,
                    user_id=uid,
                    channel=DeliveryChannel.EMAIL,
                    state=DeliveryState.QUEUED,
                    created_at=now,
                    updated_at=now,
                    due_at=due,
                )
                for uid in batch
            ]
        )
        queued += len(batch)
    if queued:
        metrics.count([(DeliveryChannel.EMAIL, DeliveryState.QUEUED, "")] * queued)
        enqueue_quietly("notifications.tasks.email_due", countdown=grace)
    return queued
