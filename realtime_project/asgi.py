"""ASGI entry point: HTTP to Django, `/ws/` to the gateway consumer.

Run it with `python manage.py serve` (uvicorn websockets-sansio by default, or
`--server daphne`); `daphne realtime_project.asgi:application` also works.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from realtime_project.gateway.auth import SessionUserMiddleware  # noqa: E402  (needs Django set up)
from realtime_project.gateway.consumer import GatewayConsumer  # noqa: E402
from realtime_project.gateway.direct import RawSendMiddleware  # noqa: E402

websocket_urlpatterns = [path("ws/", GatewayConsumer.as_asgi())]

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Static files (the dashboard bundle) are served by the app itself, so one
        # process is the whole product; behind a CDN or whitenoise this is bypassed.
        "http": ASGIStaticFilesHandler(django_asgi_app),
        # Origins are checked by the consumer (non-browser clients send none).
        "websocket": RawSendMiddleware(SessionUserMiddleware(URLRouter(websocket_urlpatterns))),
    }
)
