"""HTTP views of the gateway: liveness, readiness, metrics, WebSocket tickets."""

from __future__ import annotations

import hmac

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import extend_schema, inline_serializer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from .api import publish, validate_channel
from .auth import issue_ticket
from .conf import gateway_settings
from .credentials import SESSION, TOKEN, Credential
from .health import readiness


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers HTTP. Never touches dependencies. Public."""
    return JsonResponse({"status": "ok"})


def _ops_token_given(request: HttpRequest) -> bool:
    token = gateway_settings().ops_token
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), token)


async def _ops_allowed(request: HttpRequest) -> bool:
    """Operational details: embedded mode, the ops token, or a staff session."""
    if gateway_settings().ops_public or _ops_token_given(request):
        return True
    user = await request.auser()
    return bool(user.is_authenticated and user.is_staff)


async def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: database and channel layer reachable; connection counts; app checks.

    The details (gateway id, database vendor, user counts, chain ids, sources) are for
    operators; a load balancer's unauthenticated probe gets the bare status and code."""
    ready, body = await readiness()
    if not await _ops_allowed(request):
        body = {"status": body["status"]}
    return JsonResponse(body, status=200 if ready else 503)


async def metrics(request: HttpRequest) -> HttpResponse:
    if not await _ops_allowed(request):
        return JsonResponse(
            {"code": "forbidden", "detail": "metrics need the ops token (Authorization: Bearer) or a staff session"},
            status=403,
        )
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)


@ensure_csrf_cookie  # the page's POSTs (push subscription) send it back as X-CSRFToken
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard.html", {})


#: DRF's and this module's errors (realtime_project/api_errors.py).
ApiError = inline_serializer(
    "ApiError", {"code": serializers.CharField(), "detail": serializers.JSONField(), "message": serializers.CharField()}
)


class TicketThrottle(UserRateThrottle):
    rate = "30/min"


class WsTicketView(APIView):
    """Issue a short-lived, single-use ticket for `wss://…/ws/?ticket=…`."""

    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [TicketThrottle]

    @extend_schema(
        request=None,
        responses={
            201: inline_serializer(
                "WsTicket",
                {
                    "ticket": serializers.CharField(),
                    "expires_in": serializers.IntegerField(),
                    "url": serializers.CharField(),
                },
            )
        },
    )
    def post(self, request: Request) -> Response:
        user_id = request.user.pk
        assert user_id is not None  # IsAuthenticated
        ticket, ttl = issue_ticket(int(user_id), _credential_of(request))
        return Response({"ticket": ticket, "expires_in": ttl, "url": f"/ws/?ticket={ticket}"}, status=201)


def _credential_of(request: Request) -> Credential | None:
    """The credential this request authenticated with: the socket the ticket opens ends with it."""
    from rest_framework.authentication import SessionAuthentication, TokenAuthentication

    authenticator = request.successful_authenticator
    if isinstance(authenticator, TokenAuthentication) and request.auth is not None:
        return Credential(TOKEN, str(request.auth.key))
    if isinstance(authenticator, SessionAuthentication) and request.session.session_key:
        return Credential(SESSION, request.session.session_key)
    return None


class PublishSerializer(serializers.Serializer[dict[str, object]]):
    channel = serializers.CharField(max_length=100)
    data = serializers.JSONField()  # type: ignore[assignment]  # the field is named like the API


class PublishView(APIView):
    """Operators: publish to a channel on every gateway (like `manage.py publish`)."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        request=PublishSerializer,
        responses={
            201: inline_serializer("Published", {"seq": serializers.IntegerField(), "epoch": serializers.CharField()}),
            400: ApiError,
            403: ApiError,
        },
    )
    def post(self, request: Request) -> Response:
        body = PublishSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            validate_channel(body.validated_data["channel"])
            pub = publish(body.validated_data["channel"], body.validated_data["data"])
        except (ValueError, TypeError) as exc:
            return Response({"code": "bad_request", "detail": str(exc)}, status=400)
        return Response({"seq": pub.seq, "epoch": pub.epoch}, status=201)
