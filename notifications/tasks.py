"""Celery tasks: take ids, call a service. Enqueued after commit on this app's queue."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.utils import timezone

from .conf import notification_settings


def enqueue(task_name: str, *, args: list[Any] | None = None, countdown: float = 0.0) -> None:
    """Send a task to this app's queue (NOTIFICATIONS["CELERY_QUEUE"] or the default)."""
    from realtime_project.celery import app

    options: dict[str, Any] = {"countdown": countdown} if countdown > 0 else {}
    queue = notification_settings().celery_queue
    if queue:
        options["queue"] = queue
    app.tasks[task_name].apply_async(args=tuple(args or ()), **options)


@shared_task(name="notifications.tasks.publish_announcement", ignore_result=True)
def publish_announcement(announcement_id: int) -> bool:
    from .services.announcements import announcement_publish

    return announcement_publish(announcement_id=int(announcement_id), now=timezone.now())


@shared_task(name="notifications.tasks.publish_due_announcements", ignore_result=True)
def publish_due_announcements() -> int:
    from .services.announcements import announcements_publish_due

    return announcements_publish_due(now=timezone.now())


@shared_task(name="notifications.tasks.flush_digests", ignore_result=True)
def flush_digests() -> int:
    from .services.digests import digests_flush_due

    return digests_flush_due(now=timezone.now())


@shared_task(name="notifications.tasks.purge_batched_items", ignore_result=True)
def purge_batched_items() -> int:
    from .services.digests import batched_items_purge

    return batched_items_purge(now=timezone.now())
