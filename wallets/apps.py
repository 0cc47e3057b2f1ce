from django.apps import AppConfig


class WalletsConfig(AppConfig):
    name = "wallets"
    verbose_name = "Wallets"

    def ready(self) -> None:
        from . import handlers  # noqa: F401  (registers the wallet namespace)
