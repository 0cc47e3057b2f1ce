"""Enqueue this app's Celery tasks by name, on its queue (services never import tasks.py)."""

from __future__ import annotations

import logging
from typing import Any

from realtime_project.celery import app

from ..conf import notification_settings

logger = logging.getLogger("notifications.queue")


def enqueue(task_name: str, *, args: list[Any] | None = None, countdown: float = 0.0) -> None:
    """Send a task to this app's queue (NOTIFICATIONS["CELERY_QUEUE"] or the default)."""
    options: dict[str, Any] = {"countdown": countdown} if countdown > 0 else {}
    queue = notification_settings().celery_queue
    if queue:
        options["queue"] = queue
    app.tasks[task_name].apply_async(args=tuple(args or ()), **options)


def enqueue_quietly(task_name: str, *, args: list[Any] | None = None, countdown: float = 0.0) -> None:
    """`enqueue`, logging instead of raising (after commit the rows are the truth: the
    periodic sweeps deliver what a lost message missed).

    Eager Celery (embedded mode) ignores countdowns: a delayed task (a retry honouring
    Retry-After, an email's grace period) is left to the periodic sweep, which runs it
    when it is due instead of at once."""
    if countdown > 0 and app.conf.task_always_eager:
        return
    try:
        enqueue(task_name, args=args, countdown=countdown)
    except Exception:
        logger.warning("could not enqueue %s; the periodic sweep will do it", task_name, exc_info=True)
