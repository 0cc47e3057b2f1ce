"""API tokens for non-browser clients: `POST /api/auth/token/` and `.../revoke/`.

DRF's own `authtoken` (one token per user, sent as `Authorization: Token …`): a script
trades a username and password for it, then gets WebSocket tickets with it
(`POST /api/ws-ticket/`). Failed attempts spend allauth's `login_failed` budget, the
same one the sign-in page spends, so the API is no side door for guessing passwords.
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import get_adapter
from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers
from rest_framework.authtoken.models import Token
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class TokenIn(serializers.Serializer[Any]):
    username = serializers.CharField(max_length=254, help_text="username or email address")
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class TokenUserOut(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    username = serializers.CharField()


class TokenOut(serializers.Serializer[Any]):
    token = serializers.CharField(help_text="send as `Authorization: Token <token>`")
    user = TokenUserOut()


class RevokedOut(serializers.Serializer[Any]):
    revoked = serializers.BooleanField(help_text="false: there was no token to revoke")


class AuthErrorOut(serializers.Serializer[Any]):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField(required=False)


def _error(code: str, message: str, status_code: int) -> Response:
    return Response({"code": code, "message": message}, status=status_code)


class TokenObtainView(APIView):
    """Trade a username (or email) and password for the user's API token."""

    # Credentials are in the body: no session (so no CSRF check) and no token needed.
    authentication_classes: list[type] = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        request=TokenIn,
        responses={
            200: TokenOut,
            400: OpenApiResponse(AuthErrorOut, description="`bad_request` or `invalid_credentials`"),
            429: OpenApiResponse(AuthErrorOut, description="`rate_limited`: too many failed attempts"),
        },
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        body = TokenIn(data=request.data)
        if not body.is_valid():
            return Response(
                {"code": "bad_request", "message": "username and password are required", "details": body.errors},
                status=400,
            )
        login, password = body.validated_data["username"], body.validated_data["password"]
        try:
            user = get_adapter(request._request).authenticate(request._request, username=login, password=password)
        except ValidationError:  # allauth's `too_many_login_attempts`
            return _error("rate_limited", "too many failed sign-in attempts; try again later", 429)
        if user is None or not user.is_active:
            return _error("invalid_credentials", "wrong username or password", 400)
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key, "user": {"id": user.pk, "username": user.get_username()}})


class TokenRevokeView(APIView):
    """Delete the caller's API token; sockets opened with tickets it bought close (4401)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: RevokedOut}, tags=["auth"])
    def post(self, request: Request) -> Response:
        user_id = int(request.user.pk or 0)  # IsAuthenticated
        token = Token.objects.filter(user_id=user_id).first()
        if token is None:
            return Response({"revoked": False})
        token.delete()
        return Response({"revoked": True})
