"""`manage.py publish CHANNEL JSON`: publish from the shell (test a deployment)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Publish a JSON payload to a channel on every gateway, e.g. publish prices:BTC '{\"price\": 1}'"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("channel")
        parser.add_argument("payload", help="JSON text")

    def handle(self, *args: Any, **options: Any) -> None:
        from realtime_project.gateway.api import publish

        if settings.EMBEDDED:
            raise CommandError(
                "embedded mode has no shared channel layer: set REDIS_URL (the same as the "
                "gateways use) to publish from another process"
            )
        try:
            data = json.loads(options["payload"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"payload is not valid JSON: {exc}") from None
        try:
            pub = publish(options["channel"], data)
        except (ValueError, TypeError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"published to {options['channel']}: seq={pub.seq} epoch={pub.epoch}")
