"""The Celery app: Redis broker in production, eager in embedded mode.

Beat's schedule lives in the database (django-celery-beat) so staff see and change it
in the admin; apps declare their default periodic tasks in `<app>/schedule.py` and
`manage.py setup_schedule` (which `make run` and `make cluster` run after migrating)
installs the missing ones (see realtime_project/scheduling.py).
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")

app = Celery("realtime_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
@worker_process_init.connect
def _tune_gc(**_: object) -> None:
    """Freeze start-up objects out of the collector in the process that runs tasks, as the
    gateway does: a chain scan or price tick otherwise pays a full collection over every
    imported module (~0.1 s per wallets scan, docs/benchmarks/wallets.md)."""
    from .server import tune_gc

    tune_gc()
