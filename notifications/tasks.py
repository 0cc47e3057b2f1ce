"""Celery tasks: take ids, call a service. Enqueued after commit on this app's queue."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.utils import timezone

from .conf import notification_settings

logger = logging.getLogger("notifications.tasks")


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


def enqueue_quietly(task_name: str, *, args: list[Any] | None = None, countdown: float = 0.0) -> None:
    """`enqueue`, logging instead of raising (after commit the rows are the truth: the
    periodic sweeps deliver what a lost message missed).

    Eager Celery (embedded mode) ignores countdowns: a delayed task (a retry honouring
    Retry-After, an email's grace period) is left to the periodic sweep, which runs it
    when it is due instead of at once."""
    from realtime_project.celery import app

    if countdown > 0 and app.conf.task_always_eager:
        return
    try:
        enqueue(task_name, args=args, countdown=countdown)
    except Exception:
        logger.warning("could not enqueue %s; the periodic sweep will do it", task_name, exc_info=True)


# --- delivery beyond the socket (issue #14): ids in, services do the work ------------------


@shared_task(name="notifications.tasks.push_user", ignore_result=True)
def push_user(user_id: int) -> int:
    from .services.push import push_user as deliver

    return deliver(user_id=int(user_id), now=timezone.now())


@shared_task(name="notifications.tasks.push_due", ignore_result=True)
def push_due() -> int:
    from .services.push import push_due as sweep

    return sweep(now=timezone.now())


@shared_task(name="notifications.tasks.push_announcement", ignore_result=True)
def push_announcement(announcement_id: int) -> int:
    from .services.push_fanout import announcement_push_start

    return announcement_push_start(announcement_id=int(announcement_id), now=timezone.now())


@shared_task(name="notifications.tasks.push_announcement_chunk", ignore_result=True)
def push_announcement_chunk(announcement_id: int, first: int, last: int) -> int:
    from .services.push_fanout import announcement_push_chunk

    return announcement_push_chunk(
        announcement_id=int(announcement_id), first=int(first), last=int(last), now=timezone.now()
    )


@shared_task(name="notifications.tasks.email_announcement", ignore_result=True)
def email_announcement(announcement_id: int) -> int:
    from .services.announcement_email import announcement_email_start

    return announcement_email_start(announcement_id=int(announcement_id), now=timezone.now())


@shared_task(name="notifications.tasks.email_due", ignore_result=True)
def email_due() -> int:
    from .services.email import email_due as send

    return send(now=timezone.now())


@shared_task(name="notifications.tasks.email_digests", ignore_result=True)
def email_digests() -> int:
    from .services.email import email_digests_due

    return email_digests_due(now=timezone.now())
