"""Reads: unread counts, the merged list (personal + announcements), snapshots."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from wallets import api as wallets_api

from .choices import TYPES, Audience, NotificationType
from .conf import notification_settings
from .models import (
    Announcement,
    AnnouncementReceipt,
    DeliverySettings,
    Notification,
    NotificationPreference,
    TypeDefault,
)
from .payloads import announcement_payload, notification_payload, snapshot_event
from .policy import CHANNEL_ORDER, UserPolicy, builtin_default


def active_announcements(now: datetime) -> QuerySet[Announcement]:
    """Published and not expired."""
    return Announcement.objects.filter(published_at__isnull=False, published_at__lte=now).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


def _receipts(user_id: int) -> QuerySet[AnnouncementReceipt]:
    return AnnouncementReceipt.objects.filter(announcement=OuterRef("pk"), user_id=user_id)


def visible_announcements(user_id: int, now: datetime, *, audience: str | None = None) -> QuerySet[Announcement]:
    """Active announcements this user sees: everyone's, plus those targeted at them."""
    receipts = _receipts(user_id)
    qs = (
        active_announcements(now)
        .filter(Q(audience=Audience.EVERYONE) | Exists(receipts.filter(targeted=True)))
        .exclude(Exists(receipts.filter(dismissed_at__isnull=False)))
    )
    if audience == "everyone":
        qs = qs.filter(audience=Audience.EVERYONE)
    elif audience == "targeted":
        qs = qs.exclude(audience=Audience.EVERYONE)
    return qs


def unread_announcements(user_id: int, now: datetime) -> QuerySet[Announcement]:
    return visible_announcements(user_id, now).exclude(Exists(_receipts(user_id).filter(read_at__isnull=False)))


def personal_unread(user_id: int) -> QuerySet[Notification]:
    return Notification.objects.filter(user_id=user_id, read_at__isnull=True, dismissed_at__isnull=True)


def unread_count(user_id: int, now: datetime | None = None) -> int:
    """The badge: unread personal notifications plus unread visible announcements."""
    now = now or timezone.now()
    return personal_unread(user_id).count() + unread_announcements(user_id, now).count()


def _with_receipts(user_id: int, announcements: list[Announcement]) -> list[dict[str, Any]]:
    receipts = {
        r.announcement_id: r
        for r in AnnouncementReceipt.objects.filter(user_id=user_id, announcement__in=[a.pk for a in announcements])
    }
    return [announcement_payload(a, receipts.get(a.pk)) for a in announcements]


# --- the merged list, keyset-paginated --------------------------------------------------

#: Order of the merged list: newest first by time, then personal before announcements
#: at the same millisecond, then id. A cursor is the last item's key.
_KIND_RANK = {"n": 1, "a": 0}


@dataclass(frozen=True, slots=True)
class Cursor:
    created_at_ms: int
    kind: str
    pk: int

    def encode(self) -> str:
        raw = f"{self.created_at_ms}:{self.kind}:{self.pk}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """Raises ValueError for a malformed cursor."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            ts, kind, pk = raw.split(":")
            if kind not in _KIND_RANK:
                raise ValueError(kind)
            return cls(int(ts), kind, int(pk))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise ValueError("invalid cursor") from None

    def key(self) -> tuple[int, int, int]:
        return (self.created_at_ms, _KIND_RANK[self.kind], self.pk)


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def _item_key(item: dict[str, Any]) -> tuple[int, int, int]:
    kind, _, pk = str(item["id"]).partition(":")
    return (int(item["created_at"]), _KIND_RANK[kind], int(pk))


def notification_list(
    *,
    user_id: int,
    type: str | None = None,
    read: bool | None = None,
    cursor: Cursor | None = None,
    limit: int = 50,
    now: datetime | None = None,
    scope: str = "all",
) -> Page:
    """Newest first; personal notifications and visible announcements merged.

    `scope`: "all" (the REST list: personal + every visible announcement), "channel"
    (what the `notifications` channel carries: personal + announcements targeted at
    this user) or "announcements" (announcements to everyone only).
    Keyset pagination over both tables: each side returns at most `limit + 1` rows
    after the cursor, the merge keeps the first `limit`.
    """
    now = now or timezone.now()
    items: list[dict[str, Any]] = []
    audience = {"all": None, "channel": "targeted", "announcements": "everyone"}[scope]
    want_personal = scope != "announcements" and type != NotificationType.SYSTEM_ANNOUNCEMENT
    want_announcements = type in (None, NotificationType.SYSTEM_ANNOUNCEMENT)
    if want_personal:
        qs = Notification.objects.filter(user_id=user_id, dismissed_at__isnull=True)
        if type is not None:
            qs = qs.filter(type=type)
        if read is not None:
            qs = qs.filter(read_at__isnull=not read)
        if cursor is not None:
            at = datetime.fromtimestamp(cursor.created_at_ms / 1000, tz=UTC)
            after = datetime.fromtimestamp((cursor.created_at_ms + 1) / 1000, tz=UTC)
            # Times are compared at millisecond precision (what the cursor carries).
            same_ms = Q(created_at__gte=at, created_at__lt=after)
            if cursor.kind == "n":
                qs = qs.filter(Q(created_at__lt=at) | (same_ms & Q(pk__lt=cursor.pk)))
            else:
                qs = qs.filter(created_at__lt=at)
        items += [notification_payload(n) for n in qs.order_by("-created_at", "-id")[: limit + 1]]
    if want_announcements:
        announcements = visible_announcements(user_id, now, audience=audience)
        if read is not None:
            read_receipt = Exists(_receipts(user_id).filter(read_at__isnull=False))
            announcements = announcements.filter(read_receipt) if read else announcements.exclude(read_receipt)
        if cursor is not None:
            at = datetime.fromtimestamp(cursor.created_at_ms / 1000, tz=UTC)
            after = datetime.fromtimestamp((cursor.created_at_ms + 1) / 1000, tz=UTC)
            same_ms = Q(published_at__gte=at, published_at__lt=after)
            if cursor.kind == "a":
                announcements = announcements.filter(Q(published_at__lt=at) | (same_ms & Q(pk__lt=cursor.pk)))
            else:
                announcements = announcements.filter(Q(published_at__lt=after))
        items += _with_receipts(user_id, list(announcements.order_by("-published_at", "-id")[: limit + 1]))
    if cursor is not None:
        bound = cursor.key()
        items = [i for i in items if _item_key(i) < bound]
    items.sort(key=_item_key, reverse=True)
    page, more = items[:limit], len(items) > limit
    next_cursor = None
    if more and page:
        last = page[-1]
        kind, _, pk = str(last["id"]).partition(":")
        next_cursor = Cursor(int(last["created_at"]), kind, int(pk)).encode()
    return Page(page, next_cursor)


def notifications_snapshot(user_id: int, now: datetime | None = None) -> dict[str, Any]:
    """What a (re)subscriber of `notifications` starts from when history cannot recover."""
    now = now or timezone.now()
    page = notification_list(user_id=user_id, limit=notification_settings().snapshot_size, now=now, scope="channel")
    return snapshot_event(unread_count(user_id, now), page.items)


def announcements_snapshot(user_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Active announcements to everyone, with this user's read state."""
    now = now or timezone.now()
    page = notification_list(
        user_id=user_id, limit=notification_settings().snapshot_size, now=now, scope="announcements"
    )
    return snapshot_event(unread_count(user_id, now), page.items)


# --- delivery preferences (issue #14) -----------------------------------------------------


def type_defaults() -> dict[tuple[str, str], bool]:
    """Staff's defaults per (type, channel), from the admin (built-ins where unset)."""
    out = {(t, c): builtin_default(t, c) for t in TYPES for c in CHANNEL_ORDER}
    for row in TypeDefault.objects.all():
        out[(row.type, "in_app")], out[(row.type, "push")], out[(row.type, "email")] = row.in_app, row.push, row.email
    return out


def user_policy(user_id: int) -> UserPolicy:
    """The user's `UserPolicy` (three small queries)."""
    enabled = type_defaults()
    for type_, channel, on in NotificationPreference.objects.filter(user_id=user_id).values_list(
        "type", "channel", "enabled"
    ):
        enabled[(type_, channel)] = on
    settings_row = DeliverySettings.objects.filter(user_id=user_id).first()
    if settings_row is None:
        return UserPolicy(enabled=enabled)
    return UserPolicy(
        enabled=enabled,
        time_zone=settings_row.time_zone,
        quiet_start=settings_row.quiet_start,
        quiet_end=settings_row.quiet_end,
        muted_until=settings_row.muted_until,
    )


def push_gate(*, type: str, priority: str, now: datetime, urgent_breaks_through: bool) -> Callable[[int], str | None]:
    """For a fan-out to many users: `gate(user_id)` is None (push) or the suppression reason.

    Two queries whatever the audience: the users whose own choice differs from the
    type's default, and the users with settings that can silence (mute, quiet hours).
    """
    default = type_defaults()[(type, "push")]
    differing = NotificationPreference.objects.filter(type=type, channel="push").exclude(enabled=default)
    overrides: dict[int, bool] = dict(differing.values_list("user_id", "enabled"))
    silencing = DeliverySettings.objects.filter(
        Q(muted_until__gt=now) | Q(quiet_start__isnull=False, quiet_end__isnull=False)
    ).values_list("user_id", "time_zone", "quiet_start", "quiet_end", "muted_until")
    policies = {
        uid: UserPolicy(
            enabled={(type, "push"): True}, time_zone=tz, quiet_start=start, quiet_end=end, muted_until=muted
        )
        for uid, tz, start, end, muted in silencing
    }

    def gate(user_id: int) -> str | None:
        if not overrides.get(user_id, default):
            return "preference"
        policy = policies.get(user_id)
        if policy is None:
            return None
        return policy.suppression(
            type=type, channel="push", priority=priority, now=now, urgent_breaks_through=urgent_breaks_through
        )

    return gate


# --- announcement audiences, resolved when an announcement is published -----------------


def staff_user_ids() -> set[int]:
    return set(get_user_model().objects.filter(is_staff=True, is_active=True).values_list("pk", flat=True))


def wallet_chain_user_ids(chain_id: int) -> set[int]:
    """Users with a linked wallet on `chain_id` (the wallets app decides what that means)."""
    return wallets_api.users_with_wallet_on_chain(chain_id)


def audience_user_ids(audience: str, chain_id: int | None) -> set[int] | None:
    """None means everyone (stored once, delivered on the shared `announcements` channel)."""
    if audience == Audience.EVERYONE:
        return None
    if audience == Audience.STAFF:
        return staff_user_ids()
    if audience == Audience.WALLET_CHAIN and chain_id is not None:
        return wallet_chain_user_ids(chain_id)
    return set()
