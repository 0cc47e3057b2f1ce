"""Who gets told where: per type x channel preferences, mute and quiet hours (pure rules).

Precedence of a channel for a type: the user's own choice, then staff's default for the
type (admin), then the built-in default below. Push and email are also silenced while
muted and during quiet hours in the user's time zone (urgent breaks through quiet
hours when `QUIET_HOURS_URGENT_BREAKS_THROUGH`). The inbox always keeps the record:
these rules decide delivery only.
"""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, tzinfo

from .choices import DeliveryChannel, NotificationType, Priority, SuppressReason

_T, _F = True, False
#: (in_app, push, email) when neither the user nor staff said otherwise. Money and
#: security reach the user everywhere; routine activity stays in the app. The email
#: switch covers both kinds of email: urgent/high ones at once, low/medium ones in the
#: daily digest (which the user opts into). Confirmations (medium) and marketplace
#: updates (low) only ever go in the digest, so their email is on: an opted-in digest
#: lists them. Price alerts can be high, and announcements go to everyone: opt-in.
BUILTIN_DEFAULTS: dict[str, tuple[bool, bool, bool]] = {
    NotificationType.PRICE_ALERT: (_T, _T, _F),
    NotificationType.TRANSACTION_CONFIRMED: (_T, _T, _T),
    NotificationType.TRANSACTION_FAILED: (_T, _T, _T),
    NotificationType.SUBSCRIPTION_RENEWAL: (_T, _F, _T),
    NotificationType.PAYMENT_RECEIVED: (_T, _T, _T),
    NotificationType.SECURITY_WARNING: (_T, _T, _T),
    NotificationType.SYSTEM_ANNOUNCEMENT: (_T, _T, _F),
    NotificationType.MARKETPLACE_UPDATE: (_T, _F, _T),
}
CHANNEL_ORDER: tuple[str, ...] = (DeliveryChannel.IN_APP, DeliveryChannel.PUSH, DeliveryChannel.EMAIL)
#: Email (the immediate kind) is for what must not wait; the rest can go in the digest.
EMAIL_PRIORITIES: frozenset[str] = frozenset({Priority.URGENT, Priority.HIGH})
DIGEST_PRIORITIES: frozenset[str] = frozenset({Priority.LOW, Priority.MEDIUM})


def builtin_default(type: str, channel: str) -> bool:
    return BUILTIN_DEFAULTS.get(type, (True, False, False))[CHANNEL_ORDER.index(channel)]


@functools.lru_cache(maxsize=1)
def time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def zone(name: str) -> tzinfo:
    try:
        return zoneinfo.ZoneInfo(name) if name in time_zones() else UTC
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return UTC


def in_quiet_hours(start: time | None, end: time | None, local: time) -> bool:
    """`start <= local < end`; a window with start > end spans midnight (22:00-07:00)."""
    if start is None or end is None or start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


@dataclass(frozen=True)
class UserPolicy:
    """Everything the rules need about one user, loaded once (see selectors.user_policy)."""

    #: Resolved choice per (type, channel): user, else staff default, else built-in.
    enabled: dict[tuple[str, str], bool] = field(default_factory=dict)
    time_zone: str = "UTC"
    quiet_start: time | None = None
    quiet_end: time | None = None
    muted_until: datetime | None = None

    def allows(self, type: str, channel: str) -> bool:
        return self.enabled.get((type, channel), builtin_default(type, channel))

    def local_time(self, now: datetime) -> datetime:
        return now.astimezone(zone(self.time_zone))

    def quiet(self, now: datetime) -> bool:
        return in_quiet_hours(self.quiet_start, self.quiet_end, self.local_time(now).time().replace(tzinfo=None))

    def muted(self, now: datetime) -> bool:
        return self.muted_until is not None and self.muted_until > now

    def suppression(
        self, *, type: str, channel: str, priority: str, now: datetime, urgent_breaks_through: bool = True
    ) -> str | None:
        """None: deliver on `channel`; else the reason it is suppressed (`SuppressReason`)."""
        if not self.allows(type, channel):
            return SuppressReason.PREFERENCE
        if channel == DeliveryChannel.IN_APP:
            return None  # the user is looking at the page: mute and quiet hours don't apply
        if self.muted(now):
            return SuppressReason.MUTED
        if self.quiet(now) and not (urgent_breaks_through and priority == Priority.URGENT):
            return SuppressReason.QUIET_HOURS
        return None
