"""Persistent notifications, batched low-priority items, announcements and their receipts."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from .choices import Audience, DeliveryChannel, DeliveryState, NotificationType, Priority


class Notification(models.Model):
    """One notification for one user (announcements live in `Announcement`, stored once)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    type = models.CharField(max_length=40, choices=NotificationType.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.MEDIUM)
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)
    #: Makes a send idempotent: a second send with the same key for the user is a no-op.
    dedupe_key = models.CharField(max_length=200, null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "dedupe_key"],
                condition=Q(dedupe_key__isnull=False),
                name="notification_dedupe_per_user",
            )
        ]
        indexes = [
            # The list (newest first, keyset on created_at/id), optionally by type.
            models.Index(fields=["user", "-created_at", "-id"], name="notif_user_list"),
            models.Index(fields=["user", "type", "-created_at", "-id"], name="notif_user_type_list"),
            # The unread count and mark-all-read touch only unread, visible rows.
            models.Index(
                fields=["user"],
                condition=Q(read_at__isnull=True, dismissed_at__isnull=True),
                name="notif_user_unread",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type}: {self.title}"


class BatchedItem(models.Model):
    """A held low-priority notification waiting for its type's window to close.

    At the flush the window's items become one notification (one item) or one digest
    (several); the rows stay, pointing at what they became, for dedupe and audit.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=40, choices=NotificationType.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    #: When this item's window closes (the first item of the burst sets it).
    due_at = models.DateTimeField()
    dedupe_key = models.CharField(max_length=200, null=True, blank=True)
    delivered_as = models.ForeignKey(Notification, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    #: Token of the flush that took the item (set and used inside one transaction).
    claim = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "dedupe_key"],
                condition=Q(dedupe_key__isnull=False),
                name="batched_dedupe_per_user",
            )
        ]
        indexes = [
            models.Index(fields=["due_at"], condition=Q(delivered_as__isnull=True), name="batched_pending_due"),
            models.Index(fields=["user", "type"], condition=Q(delivered_as__isnull=True), name="batched_pending_group"),
        ]


class Announcement(models.Model):
    """A staff announcement (`system_announcement`), stored once whatever the audience."""

    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.MEDIUM)
    audience = models.CharField(max_length=20, choices=Audience.choices, default=Audience.EVERYONE)
    #: For audience `wallet_chain`: the EVM chain id (1 Ethereum, 137 Polygon, ...).
    chain_id = models.PositiveBigIntegerField(null=True, blank=True)
    publish_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    #: Set once, by whoever publishes first (a conditional UPDATE: publishing is idempotent).
    published_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-publish_at", "-id"]
        indexes = [
            models.Index(fields=["published_at", "expires_at"], name="announce_active"),
            models.Index(fields=["publish_at"], condition=Q(published_at__isnull=True), name="announce_due"),
        ]

    def __str__(self) -> str:
        return self.title


class AnnouncementReceipt(models.Model):
    """Per-user state of an announcement: delivery (narrow audiences), read, dismissed.

    Announcements to everyone get a receipt only when a user reads or dismisses them;
    narrower audiences (staff, a wallet chain) are resolved at publish time and get one
    receipt per recipient, which is also what makes them visible to that user.
    """

    announcement = models.ForeignKey(Announcement, on_delete=models.CASCADE, related_name="receipts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    targeted = models.BooleanField(default=False)
    read_at = models.DateTimeField(null=True, blank=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["announcement", "user"], name="receipt_once_per_user")]
        indexes = [models.Index(fields=["user", "announcement"], name="receipt_user")]


# --- delivery beyond the socket: preferences, devices, the delivery record (issue #14) ---


class TypeDefault(models.Model):
    """Staff's default channels for one notification type (a user's own choice wins)."""

    type = models.CharField(max_length=40, choices=NotificationType.choices, unique=True)
    in_app = models.BooleanField(default=True)
    push = models.BooleanField(default=True)
    email = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["type"]
        verbose_name = "default channels of a type"
        verbose_name_plural = "default channels per type"

    def __str__(self) -> str:
        return self.get_type_display()


class NotificationPreference(models.Model):
    """A user's choice for one type on one channel (absent: the type's default)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=40, choices=NotificationType.choices)
    channel = models.CharField(max_length=10, choices=DeliveryChannel.choices)
    enabled = models.BooleanField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "type", "channel"], name="preference_once")]
        indexes = [models.Index(fields=["type", "channel", "enabled"], name="preference_by_type")]


class DeliverySettings(models.Model):
    """Per user: time zone, quiet hours, mute, the daily digest (absent: defaults)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    time_zone = models.CharField(max_length=64, default="UTC")
    #: Quiet hours in the user's time zone; `start > end` spans midnight (22:00-07:00).
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    #: Push and email are suppressed until then.
    muted_until = models.DateTimeField(null=True, blank=True)
    #: A daily email of unread low/medium notifications.
    email_digest = models.BooleanField(default=False)
    last_email_digest_on = models.DateField(null=True, blank=True)
    last_email_digest_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "delivery settings"
        verbose_name_plural = "delivery settings"
        indexes = [models.Index(fields=["email_digest"], condition=Q(email_digest=True), name="settings_digest_on")]

    def __str__(self) -> str:
        return f"delivery settings of user {self.user_id}"


class PushSubscription(models.Model):
    """One browser/device's Web Push subscription (RFC 8030 endpoint + RFC 8291 keys)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions")
    endpoint = models.CharField(max_length=2048, unique=True)
    #: The browser's P-256 public key (base64url, 65 bytes) and auth secret (16 bytes).
    p256dh = models.CharField(max_length=128)
    auth = models.CharField(max_length=64)
    device = models.CharField(max_length=200, blank=True, help_text="From the browser's user agent")
    created_at = models.DateTimeField()
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user"], name="push_sub_user")]

    def __str__(self) -> str:
        return f"{self.device or 'device'} of user {self.user_id}"

    @property
    def service_host(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(self.endpoint).hostname or ""


class Delivery(models.Model):
    """The record of one notification (or announcement) on one channel for one user.

    Push has one row per device. Rows in state `queued` are also the work queue of the
    push and email tasks (`due_at`: next attempt), so a lost task message loses nothing.
    """

    notification = models.ForeignKey(
        Notification, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    announcement = models.ForeignKey(
        Announcement, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=10, choices=DeliveryChannel.choices)
    subscription = models.ForeignKey(
        PushSubscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    state = models.CharField(max_length=12, choices=DeliveryState.choices)
    reason = models.CharField(max_length=300, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    #: Queued rows: when the next attempt is due.
    due_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["channel", "due_at"], condition=Q(state="queued"), name="delivery_due"),
            models.Index(fields=["user", "channel"], condition=Q(state="queued"), name="delivery_user_queued"),
            models.Index(fields=["channel", "state"], name="delivery_channel_state"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(notification__isnull=False, announcement__isnull=True)
                | Q(notification__isnull=True, announcement__isnull=False),
                name="delivery_of_one_thing",
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.state}"

    @property
    def public_id(self) -> str:
        return f"n:{self.notification_id}" if self.notification_id else f"a:{self.announcement_id}"
