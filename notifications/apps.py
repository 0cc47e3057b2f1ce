"""App config: registers the socket namespaces/actions and subscribes to the wallets app's events."""

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from realtime_project.events import bus
        from wallets import api as wallets_api

        from . import (
            handlers,  # noqa: F401  (registers namespaces and socket actions)
            tasks,  # noqa: F401  (the embedded scheduler looks tasks up by name)
        )
        from .metrics import register
        from .services import wallet_events

        bus.subscribe(wallets_api.TransactionSettled, wallet_events.transaction_settled, name=TRANSACTIONS)
        bus.subscribe(wallets_api.ApprovalWarningsRaised, wallet_events.approval_warnings_raised, name=APPROVALS)
        register()  # delivery counters in /metrics


#: This app's subscriptions on the event bus.
TRANSACTIONS = "notifications.transaction_settled"
APPROVALS = "notifications.approval_warnings"
