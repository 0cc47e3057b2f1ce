"""Celery tasks: take ids, call a service. Enqueued after commit on this app's queue
(`services/queue.py` enqueues them by name, so services never import this module)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from .services import announcement_email, announcements, digests, email, push, push_fanout


@shared_task(name="notifications.tasks.publish_announcement", ignore_result=True)
def publish_announcement(announcement_id: int) -> bool:
    return announcements.announcement_publish(announcement_id=int(announcement_id), now=timezone.now())


@shared_task(name="notifications.tasks.publish_due_announcements", ignore_result=True)
def publish_due_announcements() -> int:
    return announcements.announcements_publish_due(now=timezone.now())


@shared_task(name="notifications.tasks.flush_digests", ignore_result=True)
def flush_digests() -> int:
    return digests.digests_flush_due(now=timezone.now())


@shared_task(name="notifications.tasks.purge_batched_items", ignore_result=True)
def purge_batched_items() -> int:
    return digests.batched_items_purge(now=timezone.now())


# --- delivery beyond the socket (issue #14): ids in, services do the work ------------------


@shared_task(name="notifications.tasks.push_user", ignore_result=True)
def push_user(user_id: int) -> int:
    return push.push_user(user_id=int(user_id), now=timezone.now())


@shared_task(name="notifications.tasks.push_due", ignore_result=True)
def push_due() -> int:
    return push.push_due(now=timezone.now())


@shared_task(name="notifications.tasks.push_announcement", ignore_result=True)
def push_announcement(announcement_id: int) -> int:
    return push_fanout.announcement_push_start(announcement_id=int(announcement_id), now=timezone.now())


@shared_task(name="notifications.tasks.push_announcement_chunk", ignore_result=True)
def push_announcement_chunk(announcement_id: int, first: int, last: int) -> int:
    return push_fanout.announcement_push_chunk(
        announcement_id=int(announcement_id), first=int(first), last=int(last), now=timezone.now()
    )


@shared_task(name="notifications.tasks.email_announcement", ignore_result=True)
def email_announcement(announcement_id: int) -> int:
    return announcement_email.announcement_email_start(announcement_id=int(announcement_id), now=timezone.now())


@shared_task(name="notifications.tasks.email_due", ignore_result=True)
def email_due() -> int:
    return email.email_due(now=timezone.now())


@shared_task(name="notifications.tasks.email_digests", ignore_result=True)
def email_digests() -> int:
    return email.email_digests_due(now=timezone.now())
