"""Wire shapes of notification events (docs/notifications.md) and public ids `n:1`/`a:2`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, NotRequired, TypedDict

from .choices import NotificationType
from .models import Announcement, AnnouncementReceipt, Notification

Kind = Literal["n", "a"]
_KINDS: dict[str, Kind] = {"n": "n", "a": "a"}


class InvalidId(ValueError):
    """A notification id that is not `n:<int>` or `a:<int>`."""


@dataclass(frozen=True, slots=True)
class PublicId:
    kind: Kind
    pk: int

    def __str__(self) -> str:
        return f"{self.kind}:{self.pk}"


def parse_id(value: object) -> PublicId:
    """Parse a client's notification id. Bare integers mean personal notifications."""
    if isinstance(value, bool):
        raise InvalidId("notification_id must be a string like 'n:123' or 'a:45'")
    if isinstance(value, int):
        value = f"n:{value}"
    if not isinstance(value, str) or len(value) > 24:
        raise InvalidId("notification_id must be a string like 'n:123' or 'a:45'")
    prefix, sep, rest = value.partition(":")
    kind = _KINDS.get(prefix)
    if not sep or kind is None or not rest.isdigit() or int(rest) <= 0 or len(rest) > 18:
        raise InvalidId("notification_id must be a string like 'n:123' or 'a:45'")
    return PublicId(kind, int(rest))


def ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def jsonable(value: Any) -> Any:
    """Data dicts hold JSON only: decimals become numbers (the wire contract), sets lists."""
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, datetime):
        return ms(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    return value


def notification_payload(n: Notification) -> dict[str, Any]:
    return {
        "id": f"n:{n.pk}",
        "type": n.type,
        "title": n.title,
        "body": n.body,
        "data": n.data,
        "priority": n.priority,
        "created_at": ms(n.created_at),
        "read_at": ms(n.read_at),
    }


def announcement_payload(a: Announcement, receipt: AnnouncementReceipt | None = None) -> dict[str, Any]:
    return {
        "id": f"a:{a.pk}",
        "type": NotificationType.SYSTEM_ANNOUNCEMENT.value,
        "title": a.title,
        "body": a.body,
        "data": {"audience": a.audience, "expires_at": ms(a.expires_at)},
        "priority": a.priority,
        "created_at": ms(a.published_at or a.publish_at),
        "read_at": ms(receipt.read_at) if receipt is not None else None,
    }


def created_event(n: dict[str, Any], unread_count: int | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"event": "created", "notification": n}
    if unread_count is not None:
        event["unread_count"] = unread_count
    return event


def read_event(ids: list[str], unread_count: int) -> dict[str, Any]:
    return {"event": "read", "ids": ids, "unread_count": unread_count}


def read_all_event() -> dict[str, Any]:
    return {"event": "read_all", "unread_count": 0}


def dismissed_event(ids: list[str], unread_count: int) -> dict[str, Any]:
    return {"event": "dismissed", "ids": ids, "unread_count": unread_count}


def snapshot_event(unread_count: int, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"event": "snapshot", "unread_count": unread_count, "notifications": items}


def user_channel(user_id: int) -> str:
    """The internal channel of a user's `notifications` subscription."""
    return f"notifications:{int(user_id)}"


ANNOUNCEMENTS_CHANNEL = "announcements"


# --- the schema of each event on `notifications` and `announcements` (client/src/stores/types.ts
# mirrors them; tests/architecture/test_payload_types.py keeps both in step) ----------------


class NotificationPayload(TypedDict):
    """A notification or an announcement as a client sees it."""

    id: str
    type: str
    title: str
    body: str
    data: dict[str, Any]
    priority: str
    created_at: int | None
    read_at: int | None


class CreatedEvent(TypedDict):
    event: Literal["created"]
    notification: NotificationPayload
    unread_count: NotRequired[int]


class ReadEvent(TypedDict):
    event: Literal["read"]
    ids: list[str]
    unread_count: int


class ReadAllEvent(TypedDict):
    event: Literal["read_all"]
    unread_count: int


class DismissedEvent(TypedDict):
    event: Literal["dismissed"]
    ids: list[str]
    unread_count: int


class SnapshotEvent(TypedDict):
    event: Literal["snapshot"]
    unread_count: int
    notifications: list[NotificationPayload]


NotificationEvent = CreatedEvent | ReadEvent | ReadAllEvent | DismissedEvent | SnapshotEvent
