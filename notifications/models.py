"""Persistent notifications, batched low-priority items, announcements and their receipts."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from .types import Audience, NotificationType, Priority


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
