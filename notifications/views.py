"""REST endpoints under /api/notifications/: list, unread count, read, read all, dismiss."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from realtime_project.accounts.identity import signed_in_user_id

from . import selectors
from .choices import TYPES
from .conf import notification_settings
from .errors import NotificationNotFound
from .payloads import InvalidId, PublicId, parse_id
from .selectors import Cursor
from .serializers import NotificationError, NotificationPage, UnreadCount
from .services import notifications as sending


def _uid(request: Request) -> int:
    return signed_in_user_id(request)  # IsAuthenticated on every view here


def error(code: str, message: str, http: int, **details: Any) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return Response(body, status=http)


class NotificationListView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[
            OpenApiParameter("type", OpenApiTypes.STR, description="one of the eight notification types"),
            OpenApiParameter("read", OpenApiTypes.BOOL, description="true: read only; false: unread only"),
            OpenApiParameter("cursor", OpenApiTypes.STR, description="`next` of the previous page"),
            OpenApiParameter("limit", OpenApiTypes.INT, description="page size (default 50, at most 200)"),
        ],
        responses={200: NotificationPage, 400: NotificationError},
        operation_id="notifications_list",
    )
    def get(self, request: Request) -> Response:
        """Personal notifications and visible announcements, newest first (cursor pages)."""
        conf = notification_settings()
        params = request.query_params
        type_ = params.get("type") or None
        if type_ is not None and type_ not in TYPES:
            return error("bad_request", "unknown notification type", 400, field="type", allowed=sorted(TYPES))
        read: bool | None = None
        if params.get("read") not in (None, ""):
            value = params["read"].lower()
            if value not in ("true", "false", "1", "0"):
                return error("bad_request", "read must be true or false", 400, field="read")
            read = value in ("true", "1")
        cursor = None
        if params.get("cursor"):
            try:
                cursor = Cursor.decode(params["cursor"])
            except ValueError:
                return error("bad_request", "invalid cursor", 400, field="cursor")
        try:
            limit = int(params.get("limit") or conf.page_size)
        except ValueError:
            return error("bad_request", "limit must be an integer", 400, field="limit")
        if not 1 <= limit <= conf.max_page_size:
            return error("bad_request", f"limit must be between 1 and {conf.max_page_size}", 400, field="limit")
        page = selectors.notification_list(user_id=_uid(request), type=type_, read=read, cursor=cursor, limit=limit)
        next_url = None
        if page.next_cursor is not None:
            query = params.copy()
            query["cursor"] = page.next_cursor
            next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        return Response({"next": next_url, "previous": None, "results": page.items})


class UnreadCountView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: UnreadCount}, operation_id="notifications_unread_count")
    def get(self, request: Request) -> Response:
        return Response({"unread_count": selectors.unread_count(_uid(request), timezone.now())})


def _parse(notification_id: str) -> PublicId | Response:
    try:
        return parse_id(notification_id)
    except InvalidId as exc:
        return error("bad_request", str(exc), 400, field="notification_id")


class _NotificationActionView(APIView):
    """POST on one notification: mark read or dismiss (the service differs)."""

    permission_classes = [IsAuthenticated]
    service: staticmethod[..., int]  # sending.notification_mark_read or notification_dismiss

    @extend_schema(request=None, responses={200: UnreadCount, 400: NotificationError, 404: NotificationError})
    def post(self, request: Request, notification_id: str) -> Response:
        pid = _parse(notification_id)
        if isinstance(pid, Response):
            return pid
        try:
            count = self.service(user_id=_uid(request), notification_id=pid, now=timezone.now())
            return Response({"unread_count": count})
        except NotificationNotFound:
            return error("not_found", "no such notification", status.HTTP_404_NOT_FOUND)


class MarkReadView(_NotificationActionView):
    service = staticmethod(sending.notification_mark_read)


class DismissView(_NotificationActionView):
    service = staticmethod(sending.notification_dismiss)


class MarkAllReadView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: UnreadCount})
    def post(self, request: Request) -> Response:
        return Response({"unread_count": sending.notification_mark_all_read(user_id=_uid(request), now=timezone.now())})
