"""App config of the gateway (metrics, health checks, management commands)."""

from __future__ import annotations

from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "realtime_project.gateway"
    label = "gateway"
    verbose_name = "WebSocket gateway"

    def ready(self) -> None:
        from . import builtins, middleware  # noqa: F401
        from .conf import gateway_settings
        from .router import router

        if not router.middleware:
            # Outermost first: count every frame, then rate-limit, then check auth.
            router.use(middleware.metrics)
            router.use(middleware.RateLimit(close_after=gateway_settings().flood_close_after))
            router.use(middleware.auth_required)
