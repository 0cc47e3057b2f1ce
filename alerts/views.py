"""REST endpoints under /api/alerts/: list, create, retrieve, update, delete rules."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from realtime_project.accounts.identity import signed_in_user_id

from . import selectors
from .engine import get_engine
from .errors import AlertError
from .payloads import rule_payload
from .serializers import AlertErrorOut, Deleted, RuleEnvelope, RuleIn, RuleList, RulePatch
from .services.rules import alert_rule_update
from .validation import parse_create, parse_time


def _uid(request: Request) -> int:
    return signed_in_user_id(request)


def error(exc: AlertError) -> Response:
    status = {"not_found": 404, "rule_limit": 409}.get(exc.code, 400)
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.field:
        body["details"] = {"field": exc.field}
    return Response(body, status=status)


class RuleListView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: RuleList}, operation_id="alerts_list")
    def get(self, request: Request) -> Response:
        return Response({"rules": [rule_payload(r) for r in selectors.rules_of(_uid(request))]})

    @extend_schema(request=RuleIn, responses={201: RuleEnvelope, 400: AlertErrorOut, 409: AlertErrorOut})
    def post(self, request: Request) -> Response:
        try:
            rule = get_engine().register_alert(user_id=_uid(request), **parse_create(request.data))
        except AlertError as exc:
            return error(exc)
        return Response({"rule": rule_payload(rule)}, status=201)


class RuleDetailView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: RuleEnvelope, 404: AlertErrorOut})
    def get(self, request: Request, rule_id: int) -> Response:
        try:
            return Response({"rule": rule_payload(selectors.rule_of(_uid(request), rule_id))})
        except AlertError as exc:
            return error(exc)

    @extend_schema(request=RulePatch, responses={200: RuleEnvelope, 400: AlertErrorOut, 404: AlertErrorOut})
    def patch(self, request: Request, rule_id: int) -> Response:
        """Change `active`, `mode`, `cooldown` or `expires_at`."""
        try:
            changes = dict(request.data) if isinstance(request.data, dict) else None
            if changes is None:
                return Response({"code": "bad_request", "message": "expected an object"}, status=400)
            if "expires_at" in changes:
                changes["expires_at"] = parse_time(changes["expires_at"], "expires_at")
            rule = alert_rule_update(user_id=_uid(request), rule_id=rule_id, changes=changes, now=timezone.now())
        except AlertError as exc:
            return error(exc)
        return Response({"rule": rule_payload(rule)})

    @extend_schema(responses={200: Deleted, 404: AlertErrorOut})
    def delete(self, request: Request, rule_id: int) -> Response:
        try:
            get_engine().delete_alert(user_id=_uid(request), rule_id=rule_id)
        except AlertError as exc:
            return error(exc)
        return Response({"deleted": True})
