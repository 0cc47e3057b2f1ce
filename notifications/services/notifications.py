"""Personal notifications: send (idempotent), mark read, mark all read, dismiss."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from .. import selectors
from ..choices import Priority
from ..conf import notification_settings
from ..errors import InvalidNotification, NotificationNotFound
from ..models import Announcement, AnnouncementReceipt, Notification
from ..payloads import (
    PublicId,
    created_event,
    dismissed_event,
    notification_payload,
    read_all_event,
    read_event,
)
from ..validation import NotificationSpec
from . import delivery
from .dedupe import Duplicate, SendResult, earlier_send, held_with_key
from .digests import notification_hold
from .routing import deliveries_cancel_read, route_notification


def _require_user(user_id: int) -> None:
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise InvalidNotification("user_id must be an integer")
    if not get_user_model().objects.filter(pk=user_id, is_active=True).exists():
        raise InvalidNotification(f"no active user {user_id}")


def notification_send(*, user_id: int, spec: NotificationSpec, now: datetime) -> SendResult:
    """Persist, then deliver after commit; low priority waits for its digest window.

    A repeated `dedupe_key` for the same user returns the first result and delivers
    nothing (also when two sends race: the unique constraint decides).
    """
    _require_user(user_id)
    if _digested(spec):
        return notification_hold(user_id=user_id, spec=spec, now=now)
    # Write first, check after: the unique constraint decides races, and a transaction
    # that starts with a write never has to upgrade a read lock (SQLite refuses that
    # upgrade under contention with "database is locked").
    with transaction.atomic():
        try:
            with transaction.atomic():
                notification = _create(user_id, spec, now)
                if spec.dedupe_key is not None and held_with_key(user_id, spec.dedupe_key):
                    raise Duplicate
        except (IntegrityError, Duplicate):
            raced = earlier_send(user_id, spec.dedupe_key)
            if raced is None:
                raise
            return raced
        count = selectors.unread_count(user_id, now)
        if route_notification(notification, now).live:
            delivery.to_user(user_id, created_event(notification_payload(notification), count))
    return SendResult(notification, created=True)


def _digested(spec: NotificationSpec) -> bool:
    """Low priority goes into its type's digest window (when digests are on)."""
    return spec.priority == Priority.LOW and notification_settings().digest_window > 0


def _create(user_id: int, spec: NotificationSpec, now: datetime) -> Notification:
    return Notification.objects.create(
        user_id=user_id,
        type=spec.type,
        title=spec.title,
        body=spec.body,
        data=spec.data,
        priority=spec.priority,
        dedupe_key=spec.dedupe_key,
        created_at=now,
    )


def notification_send_many(*, items: list[tuple[int, NotificationSpec]], now: datetime) -> list[SendResult]:
    """Send several in one transaction; delivered after commit in priority order."""
    results: list[SendResult] = []
    with transaction.atomic():
        for user_id, _spec in items:
            _require_user(user_id)
        for user_id, spec in items:
            if _digested(spec):
                results.append(notification_hold(user_id=user_id, spec=spec, now=now))
                continue
            existing = earlier_send(user_id, spec.dedupe_key)
            if existing is not None:
                results.append(existing)
                continue
            notification = _create(user_id, spec, now)
            results.append(SendResult(notification, created=True))
        created = [r.notification for r in results if r.created and r.notification is not None]
        # The badge after the whole flush (one count per user, not per notification).
        counts = {uid: selectors.unread_count(uid, now) for uid in {n.user_id for n in created}}
        live = [n for n in created if route_notification(n, now).live]
        events = [(n.user_id, created_event(notification_payload(n), counts[n.user_id])) for n in live]
        delivery.in_priority_order(events)
    return results


def _visible_announcement(user_id: int, pk: int, now: datetime) -> Announcement:
    announcement = selectors.visible_announcements(user_id, now).filter(pk=pk).first()
    if announcement is None:
        raise NotificationNotFound("no such notification")
    return announcement


def _receipt_update(user_id: int, announcement_id: int, now: datetime, **change: datetime) -> int:
    """Set `read_at` or `dismissed_at` on the user's receipt (created if needed) of a
    visible announcement; returns 1 if it changed. Raises NotificationNotFound."""
    field = next(iter(change))
    mine = AnnouncementReceipt.objects.filter(announcement_id=announcement_id, user_id=user_id)
    changed = mine.filter(**{f"{field}__isnull": True}).update(**change)
    announcement = _visible_announcement(user_id, announcement_id, now)  # rolls back if not
    if not changed and not mine.exists():
        AnnouncementReceipt.objects.create(announcement=announcement, user_id=user_id, **change)
        changed = 1
    return changed


def notification_mark_read(*, user_id: int, notification_id: PublicId, now: datetime) -> int:
    """Mark one notification read; returns the new unread count. Others' ids: not found."""
    with transaction.atomic():
        # Each branch starts with its write (see notification_send), then checks.
        if notification_id.kind == "n":
            rows = Notification.objects.filter(pk=notification_id.pk, user_id=user_id, dismissed_at__isnull=True)
            changed = rows.filter(read_at__isnull=True).update(read_at=now)
            if not changed and not rows.exists():
                raise NotificationNotFound("no such notification")
        else:
            changed = _receipt_update(user_id, notification_id.pk, now, read_at=now)
        count = selectors.unread_count(user_id, now)
        if changed:
            deliveries_cancel_read(
                user_id=user_id,
                now=now,
                **(
                    {"notification_id": notification_id.pk}
                    if notification_id.kind == "n"
                    else {"announcement_id": notification_id.pk}
                ),
            )
            # The user's other connections clear the item and the badge.
            delivery.to_user(user_id, read_event([str(notification_id)], count))
    return count


def notification_mark_all_read(*, user_id: int, now: datetime) -> int:
    """Everything visible becomes read; returns 0 (the new unread count)."""
    with transaction.atomic():
        changed = selectors.personal_unread(user_id).update(read_at=now)
        unread = list(selectors.unread_announcements(user_id, now).values_list("pk", flat=True))
        if unread:
            AnnouncementReceipt.objects.bulk_create(
                [AnnouncementReceipt(announcement_id=pk, user_id=user_id) for pk in unread], ignore_conflicts=True
            )
            changed += AnnouncementReceipt.objects.filter(
                user_id=user_id, announcement_id__in=unread, read_at__isnull=True
            ).update(read_at=now)
        count = selectors.unread_count(user_id, now)
        if changed:
            deliveries_cancel_read(user_id=user_id, now=now)
            delivery.to_user(user_id, read_all_event() if count == 0 else read_event([], count))
    return count


def notification_dismiss(*, user_id: int, notification_id: PublicId, now: datetime) -> int:
    """Hide one notification from lists and counts; returns the new unread count."""
    with transaction.atomic():
        if notification_id.kind == "n":
            changed = Notification.objects.filter(
                pk=notification_id.pk, user_id=user_id, dismissed_at__isnull=True
            ).update(dismissed_at=now)
            if not changed:
                raise NotificationNotFound("no such notification")
        else:
            changed = _receipt_update(user_id, notification_id.pk, now, dismissed_at=now)
        count = selectors.unread_count(user_id, now)
        if changed:
            delivery.to_user(user_id, dismissed_event([str(notification_id)], count))
    return count
