"""The Celery app: Redis broker in production, eager in embedded mode.

Beat's schedule lives in the database (django-celery-beat) so staff see and change it
in the admin; apps declare their default periodic tasks in `<app>/schedule.py` and
`manage.py migrate` installs missing ones (see realtime_project/scheduling.py).
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")

app = Celery("realtime_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
