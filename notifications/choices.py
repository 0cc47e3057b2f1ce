"""The product's notification types, priorities and announcement audiences."""

from __future__ import annotations

from django.db import models


class NotificationType(models.TextChoices):
    PRICE_ALERT = "price_alert", "Price alert"
    TRANSACTION_CONFIRMED = "transaction_confirmed", "Transaction confirmed"
    TRANSACTION_FAILED = "transaction_failed", "Transaction failed"
    SUBSCRIPTION_RENEWAL = "subscription_renewal", "Subscription renewal"
    PAYMENT_RECEIVED = "payment_received", "Payment received"
    SECURITY_WARNING = "security_warning", "Security warning"
    SYSTEM_ANNOUNCEMENT = "system_announcement", "System announcement"
    MARKETPLACE_UPDATE = "marketplace_update", "Marketplace update"


class Priority(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


#: Delivery order within one flush: urgent first (docs/notifications.md "Priority").
PRIORITY_RANK: dict[str, int] = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.MEDIUM: 2, Priority.LOW: 3}


class Audience(models.TextChoices):
    EVERYONE = "everyone", "Everyone"
    STAFF = "staff", "Staff"
    WALLET_CHAIN = "wallet_chain", "Users with a wallet on a chain"


TYPES: frozenset[str] = frozenset(NotificationType.values)
PRIORITIES: frozenset[str] = frozenset(Priority.values)


class DeliveryChannel(models.TextChoices):
    """Where a notification can be delivered (preferences are per type x channel)."""

    IN_APP = "in_app", "In-app"
    PUSH = "push", "Web Push"
    EMAIL = "email", "Email"


class DeliveryState(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    SUPPRESSED = "suppressed", "Suppressed"
    CANCELLED = "cancelled", "Cancelled"


class SuppressReason(models.TextChoices):
    """Why a delivery was suppressed or cancelled (the `reason` of those states)."""

    PREFERENCE = "preference", "Turned off in preferences"
    QUIET_HOURS = "quiet_hours", "Quiet hours"
    MUTED = "muted", "Muted"
    ONLINE = "online", "User had an open socket"
    READ = "read", "Read elsewhere first"
    NO_ADDRESS = "no_address", "No email address"
    EXPIRED = "expired", "Expired before it was due"


CHANNELS: frozenset[str] = frozenset(DeliveryChannel.values)
