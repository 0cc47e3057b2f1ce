"""HTTP views of the gateway: liveness, readiness, metrics, WebSocket tickets."""

from __future__ import annotations

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
from .credentials import SESSION, TOKEN, Credential
from .health import readiness


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers HTTP. Never touches dependencies."""
    return JsonResponse({"status": "ok"})


async def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: database and channel layer reachable; connection counts; app checks."""
    ready, body = await readiness()
    return JsonResponse(body, status=200 if ready else 503)


def metrics(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)


@ensure_csrf_cookie  # the page's POSTs (push subscription) send it back as X-CSRFToken
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard.html", {})


class TicketThrottle(UserRateThrottle):
    rate = "30/min"


class WsTicketView(APIView):
    """Issue a short-lived, single-use ticket for `wss://…/ws/?ticket=…`."""

    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [TicketThrottle]

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "WsTicket",
            {
                "ticket": serializers.CharField(),
                "expires_in": serializers.IntegerField(),
                "url": serializers.CharField(),
            },
        ),
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
        responses=inline_serializer("Published", {"seq": serializers.IntegerField(), "epoch": serializers.CharField()}),
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
