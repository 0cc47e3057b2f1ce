"""ASGI app for benchmarks: the product's app plus the naive baseline at /ws/naive/.

The product's consumer is the production application itself (`realtime_project/asgi.py`,
its middleware and routing, below one extra frame of this dispatcher); the naive consumer sits behind Channels' stock
`AuthMiddlewareStack` and `URLRouter`, as a naive Channels app would be.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")
get_asgi_application()  # Django set up before the consumers' imports

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from bench.naive_consumer import NaiveConsumer  # noqa: E402
from realtime_project.asgi import application as product  # noqa: E402

naive = URLRouter([path("ws/naive/", AuthMiddlewareStack(NaiveConsumer.as_asgi()))])


async def application(scope: dict[str, Any], receive: Any, send: Any) -> Any:
    if scope["type"] == "websocket" and scope.get("path") == "/ws/naive/":
        return await naive(scope, receive, send)
    return await product(scope, receive, send)
