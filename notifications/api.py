"""The Python API other apps call: `notify(...)`, the hub, and typed helpers.

    from notifications.api import notify, payment_received
    notify(user_id=7, type="security_warning", title="New sign-in", priority="urgent")
    payment_received(user_id=7, amount=Decimal("49.00"), currency="USD", reference="inv_123")

Every helper persists first and delivers after the caller's transaction commits
(nothing is delivered if it rolls back). Pass `dedupe_key` to make a call idempotent.
Raises `InvalidNotification` (a ValueError) for bad input; nothing is written then.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from .choices import NotificationType, Priority
from .errors import InvalidNotification, NotificationNotFound
from .hub import NotificationHub, hub
from .services.dedupe import SendResult
from .validation import NotificationSpec

__all__ = [
    "InvalidNotification",
    "NotificationHub",
    "NotificationNotFound",
    "NotificationSpec",
    "NotificationType",
    "Priority",
    "SendResult",
    "hub",
    "marketplace_update",
    "notify",
    "payment_received",
    "security_warning",
    "subscription_renewal",
]


def notify(
    *,
    user_id: int,
    type: str,
    title: str,
    body: str = "",
    data: dict[str, Any] | None = None,
    priority: str = "medium",
    dedupe_key: str | None = None,
) -> SendResult:
    """Send one notification to one user (see `NotificationHub.send`)."""
    spec = NotificationSpec.build(
        type=type, title=title, body=body, data=data, priority=priority, dedupe_key=dedupe_key
    )
    return hub.send(user_id, spec)


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
