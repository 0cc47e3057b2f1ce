"""ASGI app for benchmarks: the product's app plus the naive baseline at /ws/naive/.

The product's consumer sits behind the production middleware (`realtime_project/asgi.py`);
the naive consumer behind Channels' stock `AuthMiddlewareStack`, as a naive Channels app
would be.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from bench.naive_consumer import NaiveConsumer  # noqa: E402
from realtime_project.gateway.auth import SessionUserMiddleware  # noqa: E402  (needs Django set up)
from realtime_project.gateway.consumer import GatewayConsumer  # noqa: E402
from realtime_project.gateway.direct import RawSendMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(
            [
                path("ws/", RawSendMiddleware(SessionUserMiddleware(GatewayConsumer.as_asgi()))),
                path("ws/naive/", AuthMiddlewareStack(NaiveConsumer.as_asgi())),
            ]
        ),
    }
)
