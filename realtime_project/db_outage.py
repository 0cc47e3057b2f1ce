"""A database outage answers HTTP 503 with a code, never a 500 page.

While PostgreSQL restarts or cannot be reached, a view's query raises Django's
`OperationalError` or `InterfaceError`. The gateways keep their WebSockets (delivery goes
through Redis); HTTP callers get `503 {"code": "database_unavailable"}` with `Retry-After`,
which clients and load balancers treat as temporary. Django closes the broken connection
when the request ends (`errors_occurred`, then `close_if_unusable_or_obsolete`), so the
first request after the database is back reconnects: nothing to restart.
"""

from __future__ import annotations

import logging
import time

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin

logger = logging.getLogger("realtime.db_outage")

#: The code in the JSON body (docs/deployment.md, "When a dependency is down").
CODE = "database_unavailable"
#: Seconds a client should wait before retrying (a PostgreSQL restart takes a few).
RETRY_AFTER = 5
#: One warning per this many seconds of outage, not one per request.
LOG_EVERY = 10.0


class _LogLimit:
    """Monotonic time of the last warning (process-wide: one outage, one line per period)."""

    last = -LOG_EVERY


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    """Turns a view's `OperationalError`/`InterfaceError` into a 503 with a code."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        now = time.monotonic()
        if now - _LogLimit.last >= LOG_EVERY:
            _LogLimit.last = now
            logger.warning("database unavailable (%s): answering 503 %s", type(exception).__name__, CODE)
        detail = "The database is unavailable; retry shortly."
        response: HttpResponse
        if not request.path.startswith("/api/") and request.accepts("text/html"):
            response = HttpResponse(
                f"<!doctype html><title>503 Service Unavailable</title><h1>Service unavailable</h1><p>{detail}</p>",
                status=503,
                content_type="text/html; charset=utf-8",
            )
        else:
            response = JsonResponse({"code": CODE, "detail": detail}, status=503)
        response["Retry-After"] = str(RETRY_AFTER)
        return response
