"""The notifications app's one door for other apps: send, read state, announcements.

    from notifications import api as notifications_api
    notifications_api.notify(user_id=7, type="security_warning", title="New sign-in", priority="urgent")
    notifications_api.payment_received(user_id=7, amount=Decimal("49.00"), currency="USD", reference="inv_123")

Every write persists first and delivers after the caller's transaction commits (nothing
is delivered if it rolls back) on `notifications:{user_id}`, which every gateway fans out
to every connection of that user; read-state changes go the same way, so the user's other
devices follow. Pass `dedupe_key` to make a send idempotent. Raises `InvalidNotification`
(a ValueError) for bad input; nothing is written then. Each call takes `now` (default:
the current time), so tests move time (digest windows) without sleeping.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from . import selectors
from .choices import Audience, NotificationType, Priority
from .errors import InvalidNotification, NotificationNotFound
from .models import Announcement
from .payloads import PublicId, parse_id
from .services import announcements, digests
from .services import notifications as sending
from .services.dedupe import SendResult
from .validation import NotificationSpec

__all__ = [
    "InvalidNotification",
    "NotificationNotFound",
    "NotificationSpec",
    "NotificationType",
    "Priority",
    "SendResult",
    "broadcast",
    "dismiss",
    "flush_digests",
    "mark_all_read",
    "mark_read",
    "marketplace_update",
    "notify",
    "payment_received",
    "publish_due_announcements",
    "security_warning",
    "send",
    "send_many",
    "subscription_renewal",
    "unread_count",
]


def _at(now: datetime | None) -> datetime:
    return now if now is not None else timezone.now()


# --- sending ----------------------------------------------------------------------------


def send(user_id: int, notification: NotificationSpec | dict[str, Any], *, now: datetime | None = None) -> SendResult:
    """Persist and deliver one notification (urgent/high/medium at once, low batched)."""
    return sending.notification_send(user_id=user_id, spec=NotificationSpec.coerce(notification), now=_at(now))


def send_many(
    items: list[tuple[int, NotificationSpec | dict[str, Any]]], *, now: datetime | None = None
) -> list[SendResult]:
    """One transaction; delivered after commit in priority order (urgent first)."""
    specs = [(uid, NotificationSpec.coerce(n)) for uid, n in items]
    return sending.notification_send_many(items=specs, now=_at(now))


def notify(
    *,
    user_id: int,
    type: str,
    title: str,
    body: str = "",
    data: dict[str, Any] | None = None,
    priority: str = "medium",
    dedupe_key: str | None = None,
    now: datetime | None = None,
) -> SendResult:
    """Send one notification to one user (`send` with the fields as arguments)."""
    spec = NotificationSpec(
        type=type, title=title, body=body, data=data or {}, priority=priority, dedupe_key=dedupe_key
    )
    return send(user_id, spec, now=now)


def broadcast(notification: NotificationSpec | dict[str, Any], *, now: datetime | None = None) -> Announcement:
    """An announcement to everyone, stored once, published now."""
    if isinstance(notification, NotificationSpec):
        spec = notification
    else:
        fields = {k: v for k, v in notification.items() if k != "dedupe_key"}
        spec = NotificationSpec.coerce({"type": NotificationType.SYSTEM_ANNOUNCEMENT, **fields})
    if spec.type != NotificationType.SYSTEM_ANNOUNCEMENT:
        raise InvalidNotification("broadcasts are system announcements")
    at = _at(now)
    announcement = announcements.announcement_create(
        title=spec.title, body=spec.body, priority=spec.priority, audience=Audience.EVERYONE, publish_at=at, now=at
    )
    announcements.announcement_publish(announcement_id=announcement.pk, now=at)
    return announcement


def flush_digests(*, now: datetime | None = None) -> int:
    """Deliver the digest windows closed by now (the periodic task does this too)."""
    return digests.digests_flush_due(now=_at(now))


def publish_due_announcements(*, now: datetime | None = None) -> int:
    """Publish the scheduled announcements whose time has come (the periodic task does this too)."""
    return announcements.announcements_publish_due(now=_at(now))


# --- read state ---------------------------------------------------------------------------


def _pid(value: str | int | PublicId) -> PublicId:
    return value if isinstance(value, PublicId) else parse_id(value)


def mark_read(user_id: int, notification_id: str | int | PublicId, *, now: datetime | None = None) -> int:
    """Mark one notification read; returns the new unread count (`NotificationNotFound`)."""
    return sending.notification_mark_read(user_id=user_id, notification_id=_pid(notification_id), now=_at(now))


def mark_all_read(user_id: int, *, now: datetime | None = None) -> int:
    return sending.notification_mark_all_read(user_id=user_id, now=_at(now))


def dismiss(user_id: int, notification_id: str | int | PublicId, *, now: datetime | None = None) -> int:
    """Hide one notification from lists and counts; returns the new unread count."""
    return sending.notification_dismiss(user_id=user_id, notification_id=_pid(notification_id), now=_at(now))


def unread_count(user_id: int, *, now: datetime | None = None) -> int:
    return selectors.unread_count(user_id, _at(now))


# --- typed helpers ------------------------------------------------------------------------


def _money(amount: Decimal | int | float | str) -> Decimal:
    try:
        value = Decimal(str(amount))
    except ArithmeticError:
        raise InvalidNotification("amount must be a number") from None
    if not value.is_finite():
        raise InvalidNotification("amount must be a finite number")
    return value


def payment_received(
    *,
    user_id: int,
    amount: Decimal | int | float | str,
    currency: str,
    reference: str,
    description: str = "",
    priority: str = Priority.MEDIUM,
) -> SendResult:
    """A payment reached the user's account. Idempotent per `reference`."""
    value = _money(amount)
    return notify(
        user_id=user_id,
        type=NotificationType.PAYMENT_RECEIVED,
        title=f"Payment received: {value.normalize():f} {currency}",
        body=description,
        data={"amount": value, "currency": currency, "reference": reference},
        priority=priority,
        dedupe_key=f"payment:{reference}",
    )


def security_warning(
    *,
    user_id: int,
    title: str,
    body: str = "",
    data: dict[str, Any] | None = None,
    urgent: bool = False,
    dedupe_key: str | None = None,
) -> SendResult:
    """A risk to the user's account or wallets (e.g. an unlimited token approval): priority
    high, or urgent when the user should act at once. Idempotent per `dedupe_key`."""
    return notify(
        user_id=user_id,
        type=NotificationType.SECURITY_WARNING,
        title=title,
        body=body,
        data=data,
        priority=Priority.URGENT if urgent else Priority.HIGH,
        dedupe_key=dedupe_key,
    )


def subscription_renewal(
    *,
    user_id: int,
    plan: str,
    renews_at: datetime,
    amount: Decimal | int | float | str | None = None,
    currency: str | None = None,
    priority: str = Priority.MEDIUM,
) -> SendResult:
    """The user's subscription renews (or renewed) at `renews_at`. Idempotent per plan+date."""
    data: dict[str, Any] = {"plan": plan, "renews_at": renews_at}
    if amount is not None:
        data["amount"], data["currency"] = _money(amount), currency
    return notify(
        user_id=user_id,
        type=NotificationType.SUBSCRIPTION_RENEWAL,
        title=f"Your {plan} subscription renews on {renews_at:%Y-%m-%d}",
        data=data,
        priority=priority,
        dedupe_key=f"subscription:{plan}:{renews_at:%Y-%m-%dT%H:%M}",
    )


def marketplace_update(
    *,
    user_id: int,
    title: str,
    body: str = "",
    listing_id: str | int | None = None,
    event: str = "update",
    priority: str = Priority.LOW,
    dedupe_key: str | None = None,
) -> SendResult:
    """Marketplace activity (a bid, a sale, a price drop). Low priority by default, so a
    burst is batched into one digest."""
    data: dict[str, Any] = {"event": event}
    if listing_id is not None:
        data["listing_id"] = listing_id
    return notify(
        user_id=user_id,
        type=NotificationType.MARKETPLACE_UPDATE,
        title=title,
        body=body,
        data=data,
        priority=priority,
        dedupe_key=dedupe_key,
    )
