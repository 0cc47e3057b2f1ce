"""App config: registers the wallet namespaces and the chains' readiness check."""

from django.apps import AppConfig


class WalletsConfig(AppConfig):
    name = "wallets"
    verbose_name = "Wallets"

    def ready(self) -> None:
        from realtime_project.gateway.health import register_check

        from . import handlers  # noqa: F401  (registers the wallet namespaces)
        from .health import chains_health

        register_check("wallets", chains_health)
