"""REST endpoints of delivery: preferences, Web Push subscriptions and receipts.

/api/notifications/preferences/          GET, PATCH (partial; validated whole)
/api/notifications/push/                 GET: enabled, public key, this user's devices
/api/notifications/push/subscriptions/   POST a browser's PushSubscription.toJSON()
/api/notifications/push/subscriptions/<id>/  DELETE
/api/notifications/push/unsubscribe/     POST {endpoint}: forget this browser
/api/notifications/push/receipt/         POST {token, event}: from the service worker
"""

from __future__ import annotations

from django.core import signing
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle
from rest_framework.views import APIView

from .errors import InvalidPreferences, InvalidSubscription
from .models import PushSubscription
from .push.vapid import vapid_key
from .serializers import (
    NotificationError,
    Preferences,
    PreferencesChange,
    PushReceipt,
    PushStatus,
    PushSubscriptionIn,
    PushSubscriptionOut,
    PushUnsubscribe,
)
from .services import preferences as prefs
from .services import push
from .views import _uid, error


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
