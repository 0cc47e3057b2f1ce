"""Where a new notification goes: the per-channel delivery record, decided at creation.

Called in the transaction that creates the notification, so the record and the
notification commit together. In-app: `sent` (published live after commit) or
`suppressed`. Push: one `queued` row per device (the worker then checks presence:
pushed when the user has no open socket, or always when urgent), or one `suppressed`
row. Email (urgent and high only; the rest can go in the daily digest): `queued` with
`due_at` = now + grace period, or `suppressed`. Queued rows are enqueued after commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction

from .. import metrics, selectors
from ..choices import DeliveryChannel, DeliveryState, SuppressReason
from ..conf import notification_settings
from ..models import Delivery, Notification, PushSubscription
from ..policy import EMAIL_PRIORITIES
from .queue import enqueue_quietly


@dataclass(frozen=True, slots=True)
class Routed:
    live: bool  # publish the created event on the user's socket channel


def route_notification(notification: Notification, now: datetime) -> Routed:
    """Write the delivery record of a just-created notification; enqueue after commit."""
    conf = notification_settings()
    policy = selectors.user_policy(notification.user_id)
    rows: list[Delivery] = []

    def row(channel: str, state: str, reason: str = "", **extra: object) -> Delivery:
        return Delivery(
            notification=notification,
            user_id=notification.user_id,
            channel=channel,
            state=state,
            reason=reason,
            created_at=now,
            updated_at=now,
            **extra,
        )

    def decide(channel: str) -> str | None:
        reason: str | None = policy.suppression(
            type=notification.type,
            channel=channel,
            priority=notification.priority,
            now=now,
            urgent_breaks_through=conf.quiet_hours_urgent_breaks_through,
        )
        return reason

    in_app = decide(DeliveryChannel.IN_APP)
    rows.append(
        row(DeliveryChannel.IN_APP, DeliveryState.SUPPRESSED, in_app)
        if in_app
        else row(DeliveryChannel.IN_APP, DeliveryState.SENT, sent_at=now)
    )
    devices = list(PushSubscription.objects.filter(user_id=notification.user_id).values_list("pk", flat=True))
    push_queued = False
    if devices:
        reason = decide(DeliveryChannel.PUSH)
        if reason:
            rows.append(row(DeliveryChannel.PUSH, DeliveryState.SUPPRESSED, reason))
        else:
            push_queued = True
            rows.extend(
                row(DeliveryChannel.PUSH, DeliveryState.QUEUED, subscription_id=pk, due_at=now) for pk in devices
            )
    email_due: datetime | None = None
    if notification.priority in EMAIL_PRIORITIES:
        reason = decide(DeliveryChannel.EMAIL)
        has_address = get_user_model().objects.filter(pk=notification.user_id).exclude(email="").exists()
        if reason is None and not has_address:
            reason = SuppressReason.NO_ADDRESS
        if reason:
            rows.append(row(DeliveryChannel.EMAIL, DeliveryState.SUPPRESSED, reason))
        else:
            email_due = now + timedelta(seconds=conf.email_grace_seconds)
            rows.append(row(DeliveryChannel.EMAIL, DeliveryState.QUEUED, due_at=email_due))
    Delivery.objects.bulk_create(rows)
    user_id = notification.user_id

    def after_commit() -> None:
        metrics.count((r.channel, r.state, r.reason) for r in rows)
        if push_queued:
            enqueue_quietly("notifications.tasks.push_user", args=[user_id])
        if email_due is not None:
            enqueue_quietly("notifications.tasks.email_due", countdown=conf.email_grace_seconds)

    transaction.on_commit(after_commit)
    return Routed(live=in_app is None)


def deliveries_cancel_read(
    *, user_id: int, now: datetime, notification_id: int | None = None, announcement_id: int | None = None
) -> int:
    """The user read it elsewhere: queued push and email for it are cancelled (all of the
    user's when neither id is given: mark all read)."""
    queued = Delivery.objects.filter(user_id=user_id, state=DeliveryState.QUEUED)
    if notification_id is not None:
        queued = queued.filter(notification_id=notification_id)
    elif announcement_id is not None:
        queued = queued.filter(announcement_id=announcement_id)
    channels = list(queued.values_list("channel", flat=True))
    if not channels:
        return 0
    changed = queued.update(state=DeliveryState.CANCELLED, reason=SuppressReason.READ, due_at=None, updated_at=now)
    transaction.on_commit(lambda: metrics.count((c, DeliveryState.CANCELLED, SuppressReason.READ) for c in channels))
    return changed
