"""Low-priority batching: a burst of one type within the window becomes one digest.

The first low-priority item of a (user, type) opens a window of `DIGEST_WINDOW`
seconds; items arriving before it closes join it. When it closes, one item is
delivered as itself and several as one digest notification. Items are persisted as
they arrive (`BatchedItem`), so nothing is lost if a worker dies before the flush.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction

from .. import selectors
from ..choices import NotificationType, Priority
from ..conf import notification_settings
from ..models import BatchedItem, Notification
from ..payloads import created_event, ms, notification_payload
from ..validation import NotificationSpec
from . import delivery
from .dedupe import Duplicate, SendResult, earlier_send, sent_with_key
from .queue import enqueue
from .routing import route_notification

logger = logging.getLogger("notifications.digests")


def notification_hold(*, user_id: int, spec: NotificationSpec, now: datetime) -> SendResult:
    """Persist a low-priority item in its type's open window (opening one if needed).

    Write first (the item, due at now + window), then join the window already open,
    if any: no read-then-write upgrade (see notification_send).
    """
    window = notification_settings().digest_window
    with transaction.atomic():
        try:
            with transaction.atomic():
                item = BatchedItem.objects.create(
                    user_id=user_id,
                    type=spec.type,
                    title=spec.title,
                    body=spec.body,
                    data=spec.data,
                    created_at=now,
                    due_at=now + timedelta(seconds=window),
                    dedupe_key=spec.dedupe_key,
                )
                if spec.dedupe_key is not None and sent_with_key(user_id, spec.dedupe_key):
                    raise Duplicate
        except (IntegrityError, Duplicate):
            raced = earlier_send(user_id, spec.dedupe_key)
            if raced is None:
                raise
            return raced
        open_due = (
            BatchedItem.objects.filter(user_id=user_id, type=spec.type, delivered_as__isnull=True)
            .exclude(pk=item.pk)
            .order_by("due_at")
            .values_list("due_at", flat=True)
            .first()
        )
        if open_due is not None:
            BatchedItem.objects.filter(pk=item.pk).update(due_at=open_due)
            item.due_at = open_due
        else:
            transaction.on_commit(lambda: _schedule_flush(window))
    return SendResult(None, created=True, held=True, batched=item)


def _schedule_flush(window: float) -> None:
    # The periodic sweep (schedule.py) is the safety net if this message is lost.
    try:
        enqueue("notifications.tasks.flush_digests", countdown=window)
    except Exception:
        logger.warning("could not enqueue the digest flush; the periodic sweep will deliver it", exc_info=True)


def _digest(user_id: int, type: str, items: list[BatchedItem], now: datetime) -> Notification:
    max_items = notification_settings().digest_max_items
    label = NotificationType(type).label.lower() if type in NotificationType.values else type
    titles = [item.title for item in items]
    body = "; ".join(titles[:3]) + ("; …" if len(titles) > 3 else "")
    return Notification(
        user_id=user_id,
        type=type,
        title=f"{len(items)} new {label}s",
        body=body,
        data={
            "digest": True,
            "count": len(items),
            "items": [
                {"title": i.title, "body": i.body, "data": i.data, "created_at": ms(i.created_at)}
                for i in items[:max_items]
            ],
        },
        priority=Priority.LOW,
        created_at=now,
    )


def digests_flush_due(*, now: datetime) -> int:
    """Deliver every window that has closed by `now`; returns notifications created.

    Safe to run concurrently: a window's items are claimed with one UPDATE (their
    rows stay locked until commit); a concurrent flusher then finds them delivered.
    """
    groups = (
        BatchedItem.objects.filter(delivered_as__isnull=True, due_at__lte=now).values_list("user_id", "type").distinct()
    )
    events: list[tuple[int, dict[str, Any]]] = []
    created = 0
    for user_id, type in sorted(set(groups)):
        token = uuid.uuid4().hex
        with transaction.atomic():
            # Claim first: a concurrent flusher waits on the rows, then finds them gone.
            pending = BatchedItem.objects.filter(user_id=user_id, type=type, delivered_as__isnull=True)
            if not pending.update(claim=token):
                continue
            items = list(BatchedItem.objects.filter(claim=token).order_by("created_at", "id"))
            if len(items) == 1:
                one = items[0]
                notification = Notification.objects.create(
                    user_id=user_id,
                    type=type,
                    title=one.title,
                    body=one.body,
                    data=one.data,
                    priority=Priority.LOW,
                    created_at=now,
                    dedupe_key=one.dedupe_key,
                )
            else:
                notification = _digest(user_id, type, items, now)
                notification.save()
            BatchedItem.objects.filter(claim=token).update(delivered_as=notification)
            count = selectors.unread_count(user_id, now)
            if route_notification(notification, now).live:
                events.append((user_id, created_event(notification_payload(notification), count)))
            created += 1
    # Published after each group's commit (publish_on_commit outside a transaction runs
    # at once); one flush's deliveries go out in priority order.
    delivery.in_priority_order(events)
    return created


def batched_items_purge(*, now: datetime) -> int:
    days = notification_settings().batched_item_retention_days
    deleted, _ = BatchedItem.objects.filter(
        delivered_as__isnull=False, created_at__lt=now - timedelta(days=days)
    ).delete()
    return deleted
