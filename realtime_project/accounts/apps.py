"""App config of site accounts (allauth adapter, Sign-In with Ethereum, API tokens)."""

from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "realtime_project.accounts"
    label = "site_accounts"
    verbose_name = "Site accounts"

    def ready(self) -> None:
        from . import revocation

        revocation.connect()
