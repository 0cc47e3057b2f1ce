"""App config: registers the socket actions, the subscription to price publications, the
takeover hook and the readiness check."""

from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self) -> None:
        from realtime_project.feeds import feeds_elected
        from realtime_project.gateway.health import register_check

        from . import (
            handlers,  # noqa: F401  (registers the alerts.* socket actions)
            tasks,  # noqa: F401  (the embedded scheduler looks tasks up by name)
        )
        from .engine import on_feeds_elected
        from .health import readiness
        from .subscriptions import subscribe_to_prices

        subscribe_to_prices()
        # The feed process that takes over from another rebuilds the index from the database.
        feeds_elected.connect(on_feeds_elected, dispatch_uid="alerts.rebuild_on_takeover")
        register_check("alerts", readiness)
