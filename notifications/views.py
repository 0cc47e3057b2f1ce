"""Views of notifications: the REST API under /api/notifications/ and the HTML pages.

/api/notifications/                      GET: personal notifications and announcements (ids `n:123`, `a:45`)
/api/notifications/unread-count/         GET
/api/notifications/<id>/read/, dismiss/  POST; read-all/ POST
/api/notifications/preferences/          GET, PATCH (partial; validated whole)
/api/notifications/push/                 GET: enabled, public key, this user's devices
/api/notifications/push/subscriptions/   POST a browser's PushSubscription.toJSON()
/api/notifications/push/subscriptions/<id>/  DELETE
/api/notifications/push/unsubscribe/     POST {endpoint}: forget this browser
/api/notifications/push/receipt/         POST {token, event}: from the service worker
/sw.js, /notifications/preferences/, /notifications/unsubscribe/<token>/: the pages
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle
from rest_framework.views import APIView

from realtime_project.accounts.identity import signed_in_user_id

from . import selectors
from .choices import TYPES, DeliveryChannel, NotificationType
from .conf import notification_settings
from .errors import InvalidPreferences, InvalidSubscription, NotificationNotFound
from .models import PushSubscription
from .payloads import InvalidId, PublicId, parse_id
from .policy import CHANNEL_ORDER, time_zones
from .push.vapid import vapid_key
from .selectors import Cursor
from .serializers import (
    NotificationError,
    NotificationPage,
    Preferences,
    PreferencesChange,
    PushReceipt,
    PushStatus,
    PushSubscriptionIn,
    PushSubscriptionOut,
    PushUnsubscribe,
    UnreadCount,
)
from .services import notifications as sending
from .services import preferences as prefs
from .services import push
from .services.email import BadUnsubscribeLink, category_label, unsubscribe_apply, unsubscribe_check


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


# Delivery: preferences, Web Push subscriptions and receipts.


class PreferencesView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: Preferences}, operation_id="notifications_preferences_get")
    def get(self, request: Request) -> Response:
        """The user's channels per type, time zone, quiet hours, mute and digest choice."""
        return Response(prefs.preferences_get(user_id=_uid(request)))

    @extend_schema(
        request=PreferencesChange,
        responses={200: Preferences, 400: NotificationError},
        operation_id="notifications_preferences_update",
    )
    def patch(self, request: Request) -> Response:
        """Change some preferences; an unknown type (`unknown_type`), channel
        (`unknown_channel`) or a bad value (`bad_request`) changes nothing."""
        try:
            return Response(prefs.preferences_update(user_id=_uid(request), changes=request.data, now=timezone.now()))
        except InvalidPreferences as exc:
            return error(exc.code, str(exc), 400, field=exc.field)


def _subscription(sub: PushSubscription) -> dict[str, object]:
    return {
        "id": sub.pk,
        "device": sub.device,
        "service": sub.service_host,
        "created_at": sub.created_at,
        "last_success_at": sub.last_success_at,
    }


class PushStatusView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: PushStatus}, operation_id="notifications_push_status")
    def get(self, request: Request) -> Response:
        """Whether the server can push, its VAPID public key, and this user's devices."""
        key = vapid_key()
        subs = PushSubscription.objects.filter(user_id=_uid(request))
        return Response(
            {
                "enabled": key is not None,
                "public_key": key.public_key if key else None,
                "subscriptions": [_subscription(s) for s in subs],
            }
        )


class SubscribeThrottle(UserRateThrottle):
    rate = "30/hour"


class PushSubscriptionsView(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [SubscribeThrottle]

    @extend_schema(
        request=PushSubscriptionIn,
        responses={201: PushSubscriptionOut, 400: NotificationError},
        operation_id="notifications_push_subscribe",
    )
    def post(self, request: Request) -> Response:
        """Register this browser's push subscription (after the user opted in). Refused:
        bad keys, a non-https endpoint, an endpoint on a private/loopback address."""
        try:
            sub = push.subscription_register(
                user_id=_uid(request),
                data=request.data,
                device=str(request.META.get("HTTP_USER_AGENT", "")),
                now=timezone.now(),
            )
        except InvalidSubscription as exc:
            return error("bad_request", str(exc), 400, field=exc.field)
        return Response(_subscription(sub), status=201)


class PushSubscriptionDetailView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={204: None, 404: NotificationError}, operation_id="notifications_push_delete")
    def delete(self, request: Request, subscription_id: int) -> Response:
        if not push.subscription_remove(user_id=_uid(request), subscription_id=subscription_id):
            return error("not_found", "no such device", status.HTTP_404_NOT_FOUND)
        return Response(status=204)


class PushUnsubscribeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=PushUnsubscribe,
        responses={204: None, 400: NotificationError},
        operation_id="notifications_push_unsubscribe",
    )
    def post(self, request: Request) -> Response:
        """Forget this browser's subscription (by endpoint); idempotent."""
        endpoint = request.data.get("endpoint") if isinstance(request.data, dict) else None
        if not isinstance(endpoint, str) or not endpoint:
            return error("bad_request", "endpoint is required", 400, field="endpoint")
        push.subscription_remove(user_id=_uid(request), endpoint=endpoint)
        return Response(status=204)


class ReceiptThrottle(AnonRateThrottle):
    rate = "600/min"


class PushReceiptView(APIView):
    """The service worker's receipt. The signed token is the credential (a service worker
    may run with no page and no CSRF token), so no session is needed."""

    permission_classes = [AllowAny]
    authentication_classes: list[type] = []
    throttle_classes = [ReceiptThrottle]

    @extend_schema(
        request=PushReceipt, responses={204: None, 400: NotificationError}, operation_id="notifications_push_receipt"
    )
    def post(self, request: Request) -> Response:
        body = PushReceipt(data=request.data)
        if not body.is_valid():
            return error("bad_request", "token and event (shown|clicked) are required", 400)
        try:
            push.push_receipt(
                token=body.validated_data["token"], event=body.validated_data["event"], now=timezone.now()
            )
        except signing.BadSignature:
            return error("bad_request", "invalid or expired receipt", 400, field="token")
        return Response(status=204)


# HTML pages: the service worker, the preferences page, one-click unsubscribe.

SERVICE_WORKER = Path(__file__).resolve().parent / "static" / "notifications" / "sw.js"
#: Mute choices of the page (minutes; 0 unmutes).
MUTE_CHOICES = [(60, "1 hour"), (8 * 60, "8 hours"), (24 * 60, "1 day"), (7 * 24 * 60, "1 week")]


@functools.lru_cache(maxsize=1)
def _service_worker() -> bytes:
    return SERVICE_WORKER.read_bytes()


def service_worker(request: HttpRequest) -> HttpResponse:
    """`/sw.js`: served from the site root so its scope is the whole site."""
    response = HttpResponse(_service_worker(), content_type="text/javascript; charset=utf-8")
    # Browsers check for a new worker on navigation; never serve a stale one from cache.
    response["Cache-Control"] = "no-cache"
    response["Service-Worker-Allowed"] = "/"
    return response


def _changes_from_form(post: Any) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "types": {t: {c: post.get(f"{t}__{c}") == "on" for c in CHANNEL_ORDER} for t in NotificationType.values},
        "time_zone": post.get("time_zone", "UTC"),
        "email_digest": post.get("email_digest") == "on",
    }
    start, end = post.get("quiet_start", ""), post.get("quiet_end", "")
    changes["quiet_hours"] = {"start": start, "end": end} if start and end else None
    mute = post.get("mute", "keep")
    if mute == "off":
        changes["mute_minutes"] = 0
    elif mute.isdigit():
        changes["mute_minutes"] = int(mute)
    return changes


@login_required
@require_http_methods(["GET", "POST"])
def preferences_page(request: HttpRequest) -> HttpResponse:
    user_id = signed_in_user_id(request)
    problem: InvalidPreferences | None = None
    if request.method == "POST":
        try:
            prefs.preferences_update(user_id=user_id, changes=_changes_from_form(request.POST), now=timezone.now())
        except InvalidPreferences as exc:
            problem = exc
        else:
            return redirect(f"{request.path}?saved=1")
    current = prefs.preferences_get(user_id=user_id)
    rows = [{"type": t, **current["types"][t]} for t in NotificationType.values]
    context = {
        "prefs": current,
        "rows": rows,
        "channels": [(c, DeliveryChannel(c).label) for c in CHANNEL_ORDER],
        "time_zones": sorted(time_zones()),
        "mute_choices": MUTE_CHOICES,
        "saved": request.GET.get("saved") == "1" and problem is None,
        "error": problem,
    }
    return render(request, "notifications/preferences.html", context, status=400 if problem else 200)


@csrf_exempt  # the signed token is the credential; mail clients POST without a session (RFC 8058)
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET: a page with one button (link scanners fetch GETs, so GET changes nothing).
    POST (the button, or a mail client's RFC 8058 one-click): unsubscribe."""
    try:
        _, category = unsubscribe_check(token)
        if request.method == "POST":
            unsubscribe_apply(token)
    except BadUnsubscribeLink as exc:
        return render(
            request,
            "notifications/unsubscribe.html",
            {"error": str(exc), "expired": exc.expired},
            status=410 if exc.expired else 400,
        )
    return render(
        request,
        "notifications/unsubscribe.html",
        {"label": category_label(category), "done": request.method == "POST", "token": token},
    )
