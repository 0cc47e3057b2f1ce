"""Errors of the REST API in one shape: `{"code": "…", "detail": "…", "message": "…"}`.

DRF's own errors (unparsable JSON, unsupported media type, authentication, throttling,
method not allowed) carry only `detail`; every documented error of this API has a stable
`code` too, so DRF's get theirs (DRF's own code for the error: `parse_error`,
`not_authenticated`, `throttled`, …). Validation errors keep their per-field shape and get
`code: "invalid"`. A URL that matches no route under `/api/` (a malformed path parameter:
`/api/alerts/abc/`) is a JSON 404 with code `not_found`, not Django's HTML page.
`message` repeats `detail` as text: the apps' documented error shapes name it one way or
the other (alerts `message`, wallets and notifications `detail`).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, APIException):
        return response
    if isinstance(exc, ValidationError):
        if isinstance(response.data, dict) and "code" not in response.data:
            # The fields' errors stay where DRF puts them, and are the `detail` too.
            response.data = {"code": "invalid", "message": "invalid input", "detail": response.data, **response.data}
        elif isinstance(response.data, list):
            response.data = {"code": "invalid", "message": "invalid input", "detail": response.data}
        return response
    if isinstance(response.data, dict) and "code" not in response.data:
        detail = response.data.get("detail", "")
        response.data = {"code": str(exc.default_code), "message": str(detail), **response.data}
    return response


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 handler: JSON under /api/, the usual page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"code": "not_found", "detail": "no such resource", "message": "no such resource"}, status=404
        )
    return page_not_found(request, exception)
