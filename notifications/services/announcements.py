"""Staff announcements: validate, schedule, publish once at `publish_at`."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction

from ..choices import Audience, Priority
from ..errors import InvalidAnnouncement
from ..models import Announcement, AnnouncementReceipt
from ..payloads import announcement_payload, created_event
from ..selectors import audience_user_ids
from . import delivery
from .queue import enqueue, enqueue_quietly

logger = logging.getLogger("notifications.announcements")


def announcement_validate(
    *, priority: str, audience: str, chain_id: int | None, publish_at: datetime | None, expires_at: datetime | None
) -> None:
    """The rules the admin form and the service share; raises `InvalidAnnouncement`."""
    if priority not in Priority.values:
        raise InvalidAnnouncement(f"unknown priority {priority!r}")
    if audience not in Audience.values:
        raise InvalidAnnouncement(f"unknown audience {audience!r}")
    if publish_at is None:
        raise InvalidAnnouncement("publish_at is required")
    if expires_at is not None and expires_at <= publish_at:
        raise InvalidAnnouncement("expires_at must be after publish_at")
    if audience == Audience.WALLET_CHAIN and not chain_id:
        raise InvalidAnnouncement("audience 'wallet_chain' needs a chain id")
    if audience != Audience.WALLET_CHAIN and chain_id:
        raise InvalidAnnouncement("a chain id only applies to audience 'wallet_chain'")


def announcement_create(
    *,
    title: str,
    body: str = "",
    priority: str = Priority.MEDIUM,
    audience: str = Audience.EVERYONE,
    chain_id: int | None = None,
    publish_at: datetime,
    expires_at: datetime | None = None,
    created_by_id: int | None = None,
    now: datetime,
) -> Announcement:
    """Create and schedule; a `publish_at` in the past publishes at once (after commit)."""
    if not title or not title.strip():
        raise InvalidAnnouncement("title is required")
    announcement_validate(
        priority=priority, audience=audience, chain_id=chain_id, publish_at=publish_at, expires_at=expires_at
    )
    with transaction.atomic():
        announcement = Announcement.objects.create(
            title=title.strip(),
            body=body,
            priority=priority,
            audience=audience,
            chain_id=chain_id,
            publish_at=publish_at,
            expires_at=expires_at,
            created_by_id=created_by_id,
        )
        announcement_schedule(announcement_id=announcement.pk, now=now)
    return announcement


def announcement_schedule(*, announcement_id: int, now: datetime) -> None:
    """After commit, enqueue the publish task for `publish_at` (at once when it is past).

    The task is idempotent, and a periodic sweep publishes anything due that a lost
    or stale message missed (e.g. `publish_at` edited after the task was queued).
    """
    announcement = Announcement.objects.get(pk=announcement_id)
    if announcement.published_at is not None:
        return
    delay = max(0.0, (announcement.publish_at - now).total_seconds())

    def send() -> None:
        try:
            enqueue("notifications.tasks.publish_announcement", args=[announcement_id], countdown=delay)
        except Exception:
            logger.warning("could not enqueue announcement %s; the sweep will publish it", announcement_id)

    transaction.on_commit(send)


def announcement_publish(*, announcement_id: int, now: datetime) -> bool:
    """Publish if due and not yet published; returns whether this call published it.

    The conditional UPDATE makes it idempotent across workers and retries. Everyone:
    one event on `announcements`. Narrower audiences: a targeted receipt per recipient
    and one event on each recipient's `notifications` channel.
    """
    with transaction.atomic():
        won = Announcement.objects.filter(pk=announcement_id, published_at__isnull=True, publish_at__lte=now).update(
            published_at=now
        )
        if not won:
            return False
        announcement = Announcement.objects.get(pk=announcement_id)
        if announcement.expires_at is not None and announcement.expires_at <= now:
            logger.info("announcement %s expired before it was published; not delivered", announcement_id)
            return True
        recipients = audience_user_ids(announcement.audience, announcement.chain_id)
        event = created_event(announcement_payload(announcement))
        _push_after_commit(announcement_id)
        if recipients is None:
            delivery.to_everyone(event)
            return True
        AnnouncementReceipt.objects.bulk_create(
            [AnnouncementReceipt(announcement=announcement, user_id=uid, targeted=True) for uid in sorted(recipients)],
            ignore_conflicts=True,
            batch_size=1000,
        )
        for uid in sorted(recipients):
            delivery.to_user(uid, event)
    return True


def _push_after_commit(announcement_id: int) -> None:
    """Web Push to the audience's devices (users without an open socket), and the emails
    of an urgent/high one (after the grace period), as tasks."""

    def send() -> None:
        enqueue_quietly("notifications.tasks.push_announcement", args=[announcement_id])
        enqueue_quietly("notifications.tasks.email_announcement", args=[announcement_id])

    transaction.on_commit(send)


def announcements_publish_due(*, now: datetime) -> int:
    due = Announcement.objects.filter(published_at__isnull=True, publish_at__lte=now).values_list("pk", flat=True)
    return sum(announcement_publish(announcement_id=pk, now=now) for pk in list(due))
