"""App config: registers the socket actions, the price batch listener and a health check."""

from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self) -> None:
        from realtime_project.gateway.health import register_check

        from . import (
            handlers,  # noqa: F401  (registers the alerts.* socket actions)
            tasks,  # noqa: F401  (the embedded scheduler looks tasks up by name)
        )
        from .wiring import connect_prices, readiness

        connect_prices()
        register_check("alerts", readiness)
