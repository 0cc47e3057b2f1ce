from django.apps import AppConfig


class PricesConfig(AppConfig):
    name = "prices"
    verbose_name = "Prices"

    def ready(self) -> None:
        from realtime_project.gateway.health import register_check

        # Register the Celery tasks in every process: the embedded scheduler looks them up
        # by name in the server process, where Celery's lazy autodiscovery never ran.
        from . import (
            checks,  # noqa: F401  (a wrong PRICES setting stops every command at start)
            handlers,  # noqa: F401  (registers the prices and market namespaces)
            tasks,  # noqa: F401
        )
        from .health import readiness

        register_check("prices", readiness)
