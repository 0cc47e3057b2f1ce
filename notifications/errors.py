"""Errors of the notifications app; each carries a stable code for API and socket clients."""

from __future__ import annotations


class NotificationError(Exception):
    code = "bad_request"


class InvalidNotification(NotificationError, ValueError):
    """A send with a bad type, priority, title or data."""


class NotificationNotFound(NotificationError, LookupError):
    """Unknown id, or an id that belongs to another user (indistinguishable on purpose)."""

    code = "not_found"


class InvalidAnnouncement(NotificationError, ValueError):
    """An announcement whose fields contradict each other (e.g. expires before it publishes)."""


class InvalidPreferences(NotificationError, ValueError):
    """A preferences change with an unknown type or channel, a bad time zone, time or value."""

    def __init__(self, message: str, field: str | None = None, code: str = "bad_request") -> None:
        super().__init__(message)
        self.field = field
        self.code = code


class InvalidSubscription(NotificationError, ValueError):
    """A push subscription with bad keys or an endpoint the server will not call (SSRF)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
