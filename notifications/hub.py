"""`NotificationHub`: the one entry point for sending notifications and changing read state.

Every write persists first and delivers after commit (`realtime_project.gateway.api`)
on `notifications:{user_id}`, which every gateway's hub fans out to every connection
of that user; read-state changes go the same way, so the user's other devices follow.
The clock is an attribute so tests move time (digest windows) without sleeping.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.utils import timezone

from realtime_project.gateway.api import publish_on_commit, validate_channel

from . import selectors
from .choices import Audience, NotificationType
from .errors import InvalidNotification
from .models import Announcement
from .payloads import ANNOUNCEMENTS_CHANNEL, PublicId, created_event, ms, parse_id
from .services import announcements, digests
from .services import notifications as services
from .services.dedupe import SendResult
from .validation import NotificationSpec

Clock = Callable[[], datetime]


class NotificationHub:
    def __init__(self, clock: Clock = timezone.now) -> None:
        self.clock = clock

    # --- sending ------------------------------------------------------------------------

    def send(self, user_id: int, notification: NotificationSpec | dict[str, Any]) -> SendResult:
        """Persist and deliver one notification (urgent/high/medium at once, low batched)."""
        return services.notification_send(user_id=user_id, spec=NotificationSpec.coerce(notification), now=self.clock())

    def send_many(self, items: list[tuple[int, NotificationSpec | dict[str, Any]]]) -> list[SendResult]:
        """One transaction; delivered after commit in priority order (urgent first)."""
        specs = [(uid, NotificationSpec.coerce(n)) for uid, n in items]
        return services.notification_send_many(items=specs, now=self.clock())

    def broadcast(self, notification: NotificationSpec | dict[str, Any]) -> Announcement:
        """An announcement to everyone, stored once, published now."""
        spec = NotificationSpec.coerce({"type": NotificationType.SYSTEM_ANNOUNCEMENT, **_as_dict(notification)})
        if spec.type != NotificationType.SYSTEM_ANNOUNCEMENT:
            raise InvalidNotification("broadcasts are system announcements")
        now = self.clock()
        announcement = announcements.announcement_create(
            title=spec.title,
            body=spec.body,
            priority=spec.priority,
            audience=Audience.EVERYONE,
            publish_at=now,
            now=now,
        )
        announcements.announcement_publish(announcement_id=announcement.pk, now=now)
        return announcement

    def send_to_channel(self, channel: str, notification: NotificationSpec | dict[str, Any]) -> Any:
        """Route by channel: `notifications:{user_id}` sends to that user, `announcements`
        broadcasts; any other registered channel gets a transient (unpersisted) event
        whose id is `t:<random>`, for ephemeral notices on app channels."""
        name = validate_channel(channel)
        if name.namespace == "notifications" and name.key and name.key.isdigit():
            return self.send(int(name.key), notification)
        if name.name == ANNOUNCEMENTS_CHANNEL:
            return self.broadcast(notification)
        spec = NotificationSpec.coerce(notification)
        payload = {
            "id": f"t:{secrets.token_hex(6)}",
            "type": spec.type,
            "title": spec.title,
            "body": spec.body,
            "data": spec.data,
            "priority": spec.priority,
            "created_at": ms(self.clock()),
            "read_at": None,
        }
        publish_on_commit(name.name, created_event(payload))
        return payload

    def flush_digests(self) -> int:
        """Deliver the digest windows closed by now (the periodic task calls this too)."""
        return digests.digests_flush_due(now=self.clock())

    def publish_due_announcements(self) -> int:
        return announcements.announcements_publish_due(now=self.clock())

    # --- read state ---------------------------------------------------------------------

    def mark_read(self, user_id: int, notification_id: str | int | PublicId) -> int:
        return services.notification_mark_read(user_id=user_id, notification_id=_pid(notification_id), now=self.clock())

    def mark_all_read(self, user_id: int) -> int:
        return services.notification_mark_all_read(user_id=user_id, now=self.clock())

    def dismiss(self, user_id: int, notification_id: str | int | PublicId) -> int:
        return services.notification_dismiss(user_id=user_id, notification_id=_pid(notification_id), now=self.clock())

    def get_unread_count(self, user_id: int) -> int:
        return selectors.unread_count(user_id, self.clock())


def _pid(value: str | int | PublicId) -> PublicId:
    return value if isinstance(value, PublicId) else parse_id(value)


def _as_dict(notification: NotificationSpec | dict[str, Any]) -> dict[str, Any]:
    if isinstance(notification, NotificationSpec):
        return {
            "type": notification.type,
            "title": notification.title,
            "body": notification.body,
            "data": notification.data,
            "priority": notification.priority,
        }
    return {k: v for k, v in notification.items() if k != "dedupe_key"}


#: The process-wide hub (stateless apart from its clock).
hub = NotificationHub()
