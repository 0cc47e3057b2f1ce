"""Socket side of notifications: the `notifications` and `announcements` channels and the
`notifications.*` actions. Handlers call the hub; they hold no business rules."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.utils import timezone

from realtime_project.gateway.errors import BadRequest, NotFound
from realtime_project.gateway.namespaces import Namespace, Principal, Recovery, namespaces
from realtime_project.gateway.protocol import ChannelName
from realtime_project.gateway.router import Request, router

from . import selectors
from .errors import NotificationNotFound
from .payloads import InvalidId, PublicId, parse_id
from .services import notifications as sending


def per_user(principal: Principal, channel: ChannelName) -> ChannelName:
    """Clients subscribe to `notifications`; internally it is `notifications:{user_id}`."""
    return ChannelName("notifications", str(principal.user_id))


async def notifications_snapshot(principal: Principal, channel: ChannelName) -> dict[str, Any] | None:
    """Durable recovery: unread count and the newest notifications, from the database."""
    if principal.user_id is None:
        return None
    result: dict[str, Any] = await database_sync_to_async(selectors.notifications_snapshot)(principal.user_id)
    return result


async def announcements_snapshot(principal: Principal, channel: ChannelName) -> dict[str, Any] | None:
    """Active announcements to everyone, with this user's read state."""
    if principal.user_id is None:
        return None
    result: dict[str, Any] = await database_sync_to_async(selectors.announcements_snapshot)(principal.user_id)
    return result


namespaces.register(
    Namespace(
        name="notifications",
        public=False,
        recovery=Recovery.DURABLE,
        key_pattern=None,
        resolve=per_user,
        history_size=500,
        history_ttl=7 * 24 * 3600,
        snapshot=notifications_snapshot,
    )
)
# Announcements to everyone: one shared channel, stored once; each subscriber's
# snapshot carries that user's read state.
namespaces.register(
    Namespace(
        name="announcements",
        public=False,
        recovery=Recovery.DURABLE,
        key_pattern=None,
        history_size=200,
        history_ttl=30 * 24 * 3600,
        snapshot=announcements_snapshot,
    )
)


# --- actions ------------------------------------------------------------------------------


def notification_id_schema(frame: dict[str, Any]) -> PublicId:
    try:
        return parse_id(frame.get("notification_id"))
    except InvalidId as exc:
        raise BadRequest(str(exc), details={"field": "notification_id"}) from None


def _user(request: Request) -> int:
    assert request.user_id is not None  # auth=True routes only see signed-in users
    return request.user_id


@router.register("notifications.mark_read", schema=notification_id_schema, auth=True)
def mark_read(request: Request) -> dict[str, Any]:
    try:
        return {
            "unread_count": sending.notification_mark_read(
                user_id=_user(request), notification_id=request.data, now=timezone.now()
            )
        }
    except NotificationNotFound:
        raise NotFound("no such notification", details={"notification_id": str(request.data)}) from None


@router.register("notifications.mark_all_read", auth=True)
def mark_all_read(request: Request) -> dict[str, Any]:
    return {"unread_count": sending.notification_mark_all_read(user_id=_user(request), now=timezone.now())}


@router.register("notifications.dismiss", schema=notification_id_schema, auth=True)
def dismiss(request: Request) -> dict[str, Any]:
    try:
        return {
            "unread_count": sending.notification_dismiss(
                user_id=_user(request), notification_id=request.data, now=timezone.now()
            )
        }
    except NotificationNotFound:
        raise NotFound("no such notification", details={"notification_id": str(request.data)}) from None


@router.register("notifications.unread_count", auth=True)
def unread_count(request: Request) -> dict[str, Any]:
    return {"unread_count": selectors.unread_count(_user(request), timezone.now())}
