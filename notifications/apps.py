"""App config: registers the socket namespaces/actions and the wallets listener."""

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from . import (
            handlers,  # noqa: F401  (registers namespaces and socket actions)
            tasks,  # noqa: F401  (the embedded scheduler looks tasks up by name)
        )
        from .metrics import register
        from .wiring import connect_wallets

        connect_wallets()
        register()  # delivery counters in /metrics
