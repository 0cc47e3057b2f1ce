"""ASGI app for benchmarks: the product's app plus the naive baseline at /ws/naive/.

Both sit behind the production middleware stack (`realtime_project/asgi.py`): sessions
and auth, which a naive Channels app would have too.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from bench.naive_consumer import NaiveConsumer  # noqa: E402
from realtime_project.gateway.auth import gateway_auth_stack  # noqa: E402  (needs Django set up)
from realtime_project.gateway.consumer import GatewayConsumer  # noqa: E402
from realtime_project.gateway.direct import RawSendMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": RawSendMiddleware(
            gateway_auth_stack(
                URLRouter([path("ws/", GatewayConsumer.as_asgi()), path("ws/naive/", NaiveConsumer.as_asgi())])
            )
        ),
    }
)
