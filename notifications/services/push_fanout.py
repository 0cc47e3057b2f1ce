"""Web Push of a staff announcement to its audience's devices, in chunks.

`announcement_push_start` splits the audience's devices into chunks of
`PUSH_CHUNK_SIZE` (one task each: any worker takes any chunk). A chunk's delivery rows
are written (queued, leased), its pushes handed to the process's push client
(`PUSH_CONCURRENCY` in flight, over connections kept from earlier tasks), and the
outcomes recorded with a few UPDATEs. Memory is bounded by the chunk.

Writing the next rows while a batch is in flight was measured and dropped: on two
cores the two threads contend for the GIL and each push cost ~8 % more CPU for no gain
in rate, at 0 or 50 ms of push service round trip (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.db.models import QuerySet

from realtime_project.gateway.api import online_user_ids

from .. import metrics, selectors
from ..choices import Audience, DeliveryChannel, DeliveryState, NotificationType, Priority, SuppressReason
from ..conf import NotificationSettings, notification_settings
from ..models import Announcement, AnnouncementReceipt, Delivery, PushSubscription
from ..push.sender import PushOutcome, send_pushes
from ..push.vapid import vapid_key
from .outbox import LEASE_SECONDS
from .push import Outcomes, announcement_messages
from .queue import enqueue_quietly

Sent = list[tuple[Delivery, PushSubscription]]


def _announcement_subscriptions(announcement: Announcement) -> QuerySet[PushSubscription]:
    subs = PushSubscription.objects.filter(user__is_active=True)
    if announcement.audience != Audience.EVERYONE:
        targeted = AnnouncementReceipt.objects.filter(announcement=announcement, targeted=True).values("user_id")
        subs = subs.filter(user_id__in=targeted)
    return subs


def announcement_push_start(*, announcement_id: int, now: datetime) -> int:
    """Split the audience's devices into chunks of PUSH_CHUNK_SIZE, one task each (any
    worker takes any chunk); returns the number of chunks."""
    announcement = Announcement.objects.filter(pk=announcement_id, published_at__isnull=False).first()
    if announcement is None or (announcement.expires_at is not None and announcement.expires_at <= now):
        return 0
    subs = _announcement_subscriptions(announcement).order_by("pk").values_list("pk", flat=True)
    chunk = max(1, notification_settings().push_chunk_size)
    chunks, after = 0, 0
    while True:
        ids = list(subs.filter(pk__gt=after)[:chunk])
        if not ids:
            break
        enqueue_quietly("notifications.tasks.push_announcement_chunk", args=[announcement_id, ids[0], ids[-1]])
        chunks += 1
        after = ids[-1]
    return chunks


def _record(sent: Sent, outcomes: list[PushOutcome], now: datetime, conf: NotificationSettings) -> int:
    done = Outcomes(now, conf)
    for (row, sub), outcome in zip(sent, outcomes, strict=True):
        done.outcome([row], outcome, sub)
    done.save()
    return sum(o.accepted for o in outcomes)


def announcement_push_chunk(*, announcement_id: int, first: int, last: int, now: datetime) -> int:
    """Record and send the pushes of one chunk of devices; returns pushes accepted.
    Idempotent: a retried chunk skips devices that already have a row for this announcement
    (rows of a chunk that died in flight come back through their lease: `push_due`)."""
    announcement = Announcement.objects.get(pk=announcement_id)
    conf = notification_settings()
    done_before = set(
        Delivery.objects.filter(announcement=announcement, channel=DeliveryChannel.PUSH).values_list(
            "subscription_id", flat=True
        )
    )
    subs = [
        s
        for s in _announcement_subscriptions(announcement).filter(pk__gte=first, pk__lte=last).order_by("pk")
        if s.pk not in done_before
    ]
    if not subs:
        return 0
    gate = selectors.push_gate(
        type=NotificationType.SYSTEM_ANNOUNCEMENT,
        priority=announcement.priority,
        now=now,
        urgent_breaks_through=conf.quiet_hours_urgent_breaks_through,
    )
    online = set() if announcement.priority == Priority.URGENT else online_user_ids({s.user_id for s in subs})
    sent = _write_rows(announcement, subs, gate, online, now)
    if not sent:
        return 0
    key = vapid_key()
    if key is None:
        failed = Outcomes(now, conf)
        failed.close((r for r, _ in sent), DeliveryState.FAILED, "push is not configured (no VAPID key)")
        failed.save()
        return 0
    outcomes = send_pushes(conf, key, announcement_messages(announcement, sent))
    return _record(sent, outcomes, now, conf)


def _write_rows(
    announcement: Announcement,
    subs: list[PushSubscription],
    gate: Callable[[int], str | None],
    online: set[int],
    now: datetime,
) -> Sent:
    """The chunk's delivery rows (queued with a lease, or suppressed/cancelled); returns
    the queued ones with their device."""
    rows: list[Delivery] = []
    sent: Sent = []
    lease = now + timedelta(seconds=LEASE_SECONDS)
    for sub in subs:
        reason = gate(sub.user_id) or (SuppressReason.ONLINE if sub.user_id in online else None)
        state = DeliveryState.QUEUED
        if reason == SuppressReason.ONLINE:
            state = DeliveryState.CANCELLED
        elif reason:
            state = DeliveryState.SUPPRESSED
        row = Delivery(
            announcement=announcement,
            user_id=sub.user_id,
            channel=DeliveryChannel.PUSH,
            subscription=sub,
            state=state,
            reason=reason or "",
            attempts=1 if state == DeliveryState.QUEUED else 0,
            created_at=now,
            updated_at=now,
            due_at=lease if state == DeliveryState.QUEUED else None,
        )
        rows.append(row)
        if state == DeliveryState.QUEUED:
            sent.append((row, sub))
    Delivery.objects.bulk_create(rows, batch_size=1000)
    metrics.count((r.channel, r.state, r.reason) for r in rows if r.state != DeliveryState.QUEUED)
    return sent
