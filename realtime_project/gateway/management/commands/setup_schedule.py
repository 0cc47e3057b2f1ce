"""`manage.py setup_schedule`: install the apps' default periodic tasks (missing ones only)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the default Celery beat entries declared in <app>/schedule.py."

    def handle(self, *args: Any, **options: Any) -> None:
        from realtime_project.scheduling import install_default_schedule

        created = install_default_schedule()
        self.stdout.write(f"schedule: {len(created)} task(s) created" + (f": {', '.join(created)}" if created else ""))
