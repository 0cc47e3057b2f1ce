"""Socket actions `alerts.create`, `alerts.list`, `alerts.delete` (they call the engine)."""

from __future__ import annotations

from typing import Any

from realtime_project.gateway.errors import BadRequest, NotFound
from realtime_project.gateway.router import Request, router

from .engine import get_engine
from .errors import AlertError, RuleNotFound
from .payloads import rule_payload
from .validation import FIELDS, parse_create


def create_schema(frame: dict[str, Any]) -> dict[str, Any]:
    try:
        return parse_create({k: frame[k] for k in FIELDS if k in frame})
    except AlertError as exc:
        raise BadRequest(exc.message, details={"field": exc.field}) from None


def delete_schema(frame: dict[str, Any]) -> int:
    rule_id = frame.get("rule_id")
    if isinstance(rule_id, bool) or not isinstance(rule_id, int) or rule_id <= 0:
        raise BadRequest("rule_id must be a positive integer", details={"field": "rule_id"})
    return rule_id


def _user(request: Request) -> int:
    assert request.user_id is not None  # auth=True routes only see signed-in users
    return request.user_id


@router.register("alerts.create", schema=create_schema, auth=True)
def create(request: Request) -> dict[str, Any]:
    try:
        rule = get_engine().register_alert(user_id=_user(request), **request.data)
    except AlertError as exc:
        details: dict[str, Any] = {"field": exc.field}
        if exc.code != "bad_request":
            details["reason"] = exc.code
        raise BadRequest(exc.message, details=details) from None
    return {"rule": rule_payload(rule)}


@router.register("alerts.list", auth=True)
def list_rules(request: Request) -> dict[str, Any]:
    return {"rules": [rule_payload(r) for r in get_engine().get_alerts(_user(request))]}


@router.register("alerts.delete", schema=delete_schema, auth=True)
def delete(request: Request) -> dict[str, Any]:
    try:
        get_engine().delete_alert(user_id=_user(request), rule_id=request.data)
    except RuleNotFound:
        raise NotFound("no such rule", details={"rule_id": request.data}) from None
    return {"deleted": True}
