"""ASGI app for benchmarks: the product's app plus the naive baseline at /ws/naive/."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from bench.naive_consumer import NaiveConsumer  # noqa: E402
from realtime_project.gateway.consumer import GatewayConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter([path("ws/", GatewayConsumer.as_asgi()), path("ws/naive/", NaiveConsumer.as_asgi())]),
    }
)
