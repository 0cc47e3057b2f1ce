"""ASGI entry point: HTTP to Django, `/ws/` to the gateway consumer.

Run it with `python manage.py serve` (uvicorn websockets-sansio by default, or
`--server daphne`); `daphne realtime_project.asgi:application` also works (set
`DB_POOL=1` then: `serve` turns the database connection pool on by itself).
"""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import path  # noqa: E402

from realtime_project.gateway.admission import ConnectionLimitMiddleware  # noqa: E402
from realtime_project.gateway.auth import SessionUserMiddleware  # noqa: E402  (needs Django set up)
from realtime_project.gateway.consumer import GatewayConsumer  # noqa: E402
from realtime_project.gateway.direct import RawSendMiddleware  # noqa: E402

# Every await of an ASGI layer keeps a suspended frame for the life of each WebSocket
# (~0.4 KB apiece). Below the outermost router (which servers inspect to recognise an
# ASGI 3 app, so it stays a coroutine function) the layers choose the next app and return
# its awaitable instead of awaiting it (issue #10: memory per idle subscribed connection).


def _gateway_consumer(scope: dict[str, Any], receive: Any, send: Any) -> Any:
    return GatewayConsumer()(scope, receive, send)


websocket_urlpatterns = [path("ws/", _gateway_consumer)]

_websocket_routes = URLRouter(websocket_urlpatterns)


def _websocket(scope: dict[str, Any], receive: Any, send: Any) -> Any:
    if scope.get("path") == "/ws/" and not scope.get("root_path"):
        return _gateway_consumer(scope, receive, send)
    return _websocket_routes(scope, receive, send)  # anything else: Channels' routing


application = ProtocolTypeRouter(
    {
        # Static files (the dashboard bundle) are served by the app itself, so one
        # process is the whole product; behind a CDN or whitenoise this is bypassed.
        "http": ASGIStaticFilesHandler(django_asgi_app),
        # Connection limits first (a refused handshake costs no session lookup); origins
        # are checked by the consumer (non-browser clients send none).
        "websocket": ConnectionLimitMiddleware(RawSendMiddleware(SessionUserMiddleware(_websocket))),
    }
)
