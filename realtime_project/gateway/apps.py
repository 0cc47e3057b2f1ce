"""App config of the gateway (metrics, health checks, management commands)."""

from __future__ import annotations

from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "realtime_project.gateway"
    label = "gateway"
    verbose_name = "WebSocket gateway"

    def ready(self) -> None:
        from realtime_project.feeds_health import feeds_report

        from . import builtins, middleware  # noqa: F401
        from .conf import gateway_settings
        from .health import register_check
        from .router import router

        # The feed process's health (written by the runner, read here): not critical,
        # a gateway serves without feeds.
        register_check("feeds", feeds_report)

        if not router.middleware:
            # Outermost first: count every frame, then rate-limit, then check auth.
            router.use(middleware.metrics)
            router.use(middleware.RateLimit(close_after=gateway_settings().flood_close_after))
            router.use(middleware.auth_required)
