"""Web Push: device subscriptions, delivery of queued pushes, receipts (fan-out: push_fanout).

Queued `Delivery` rows (channel `push`) are the work: a task claims the due rows (a
lease moves `due_at` ahead, so a dead worker's rows come back), sends them through
`push.sender`, and records each outcome: `sent`; `failed` with the reason (404/410
also remove the device); or `queued` again with a backoff that honours `Retry-After`,
until `PUSH_MAX_ATTEMPTS`. A user with an open socket gets no push unless the
notification is urgent (the socket already told them); several pending pushes for one
device go out as one summary (a burst never becomes a burst of pushes).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.core import signing
from django.db import transaction
from django.db.models import F, Q

from realtime_project.gateway.api import online_user_ids

from .. import metrics
from ..choices import DeliveryChannel, DeliveryState, NotificationType, Priority, SuppressReason
from ..conf import NotificationSettings, notification_settings
from ..errors import InvalidSubscription
from ..models import Announcement, Delivery, Notification, PushSubscription
from ..payloads import ms
from ..push.endpoint import validate_subscription
from ..push.sender import PushMessage, PushOutcome, send_pushes
from ..push.vapid import vapid_key
from .outbox import claim, retry_delay
from .queue import enqueue_quietly

logger = logging.getLogger("notifications.push")

#: Priority -> (TTL seconds, RFC 8030 Urgency). An urgent warning may wait a day for a
#: phone that is off and wakes it; a low-priority digest is worthless after an hour.
PUSH_PARAMS: dict[str, tuple[int, str]] = {
    Priority.URGENT: (24 * 3600, "high"),
    Priority.HIGH: (12 * 3600, "normal"),
    Priority.MEDIUM: (6 * 3600, "normal"),
    Priority.LOW: (3600, "low"),
}
#: A device's `last_success_at` is refreshed at most this often (admin granularity):
#: a fan-out to 10,000 devices then writes 10,000 fewer rows.
SUCCESS_STAMP_SECONDS = 3600
RECEIPT_SALT = "notifications.push.receipt"
RECEIPT_MAX_AGE = 7 * 24 * 3600
MAX_DEVICE_LABEL = 200


# --- subscriptions ------------------------------------------------------------------------


def subscription_register(*, user_id: int, data: Any, device: str, now: datetime) -> PushSubscription:
    """Store (or refresh) a device's subscription; raises `InvalidSubscription`.

    An endpoint is one browser profile: posting it again updates its keys, and a new
    user signing in on that browser takes it over.
    """
    conf = notification_settings()
    if vapid_key() is None:
        raise InvalidSubscription("Web Push is not configured on this server")
    clean = validate_subscription(data, conf)
    subscription, _ = PushSubscription.objects.update_or_create(
        endpoint=clean.endpoint,
        defaults={
            "user_id": user_id,
            "p256dh": clean.p256dh,
            "auth": clean.auth,
            "device": device[:MAX_DEVICE_LABEL],
            "failures": 0,
        },
        create_defaults={
            "user_id": user_id,
            "p256dh": clean.p256dh,
            "auth": clean.auth,
            "device": device[:MAX_DEVICE_LABEL],
            "created_at": now,
        },
    )
    return subscription


def subscription_remove(*, user_id: int, subscription_id: int | None = None, endpoint: str | None = None) -> bool:
    """Forget one of the user's devices (by id or endpoint); False if it is not theirs."""
    mine = PushSubscription.objects.filter(user_id=user_id)
    if subscription_id is not None:
        mine = mine.filter(pk=subscription_id)
    elif endpoint is not None:
        mine = mine.filter(endpoint=endpoint)
    else:
        return False
    deleted, _ = mine.delete()
    return deleted > 0


# --- messages -----------------------------------------------------------------------------


def receipt_token(delivery_ids: Iterable[int]) -> str:
    return signing.dumps(sorted(delivery_ids), salt=RECEIPT_SALT)


def _message(sub: PushSubscription, payload: dict[str, Any], priority: str, topic: str | None = None) -> PushMessage:
    ttl, urgency = PUSH_PARAMS.get(priority, PUSH_PARAMS[Priority.MEDIUM])
    return PushMessage(sub.endpoint, sub.p256dh, sub.auth, payload, ttl, urgency, topic)


def _base(public_id: str, type: str, title: str, body: str, priority: str, created: datetime | None) -> dict[str, Any]:
    return {
        "v": 1,
        "id": public_id,
        "type": type,
        "title": title,
        "body": body,
        "priority": priority,
        "icon": notification_settings().push_icon,
        "url": f"/?notification={public_id}",
        "tag": public_id,
        "created_at": ms(created),
    }


def notification_message(sub: PushSubscription, rows: list[Delivery]) -> PushMessage:
    """One push for one device: the notification itself, or a summary of several."""
    notes = sorted((r.notification for r in rows if r.notification is not None), key=lambda n: (n.created_at, n.pk))
    receipt = receipt_token(r.pk for r in rows)
    newest = notes[-1]
    if len(notes) == 1:
        payload = _base(f"n:{newest.pk}", newest.type, newest.title, newest.body, newest.priority, newest.created_at)
        return _message(sub, {**payload, "receipt": receipt}, newest.priority)
    priority = min((n.priority for n in notes), key=lambda p: list(PUSH_PARAMS).index(p))
    titles = [n.title for n in reversed(notes)]
    body = "; ".join(titles[:3]) + ("; …" if len(titles) > 3 else "")
    payload = _base(f"n:{newest.pk}", newest.type, f"{len(notes)} new notifications", body, priority, newest.created_at)
    payload.update({"tag": "summary", "count": len(notes), "ids": [f"n:{n.pk}" for n in notes[-20:]]})
    return _message(sub, {**payload, "receipt": receipt}, priority, topic="summary")


def announcement_messages(
    announcement: Announcement, sent: Iterable[tuple[Delivery, PushSubscription]]
) -> list[PushMessage]:
    """One push per device; the payload is built once, each carries its own receipt."""
    payload = _base(
        f"a:{announcement.pk}",
        NotificationType.SYSTEM_ANNOUNCEMENT,
        announcement.title,
        announcement.body,
        announcement.priority,
        announcement.published_at or announcement.publish_at,
    )
    signer = signing.TimestampSigner(salt=RECEIPT_SALT)  # what receipt_token does, set up once
    return [
        _message(sub, {**payload, "receipt": signer.sign_object([row.pk])}, announcement.priority) for row, sub in sent
    ]


# --- delivering queued rows ---------------------------------------------------------------


class Outcomes:
    """Collects final states and writes them with a few UPDATEs."""

    def __init__(self, now: datetime, conf: NotificationSettings) -> None:
        self.now, self.conf = now, conf
        self.final: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.retry: list[Delivery] = []
        self.ok_subs: set[int] = set()
        self.bad_subs: set[int] = set()
        self.gone_subs: set[int] = set()

    def close(self, rows: Iterable[Delivery], state: str, reason: str = "") -> None:
        self.final[(state, reason)].extend(r.pk for r in rows)

    def outcome(self, rows: list[Delivery], outcome: PushOutcome, sub: PushSubscription) -> None:
        if outcome.accepted:
            self.close(rows, DeliveryState.SENT, "truncated (413)" if outcome.truncated else "")
            self.ok_subs.add(sub.pk)
            return
        if outcome.gone:  # the device is removed: no later message could reach it either
            self.gone_subs.add(sub.pk)
            reason = outcome.error if outcome.bad_keys else f"subscription expired ({outcome.error})"
            self.close(rows, DeliveryState.FAILED, reason[:300])
            return
        self.bad_subs.add(sub.pk)
        attempts = max(r.attempts for r in rows)
        if outcome.retryable and attempts < self.conf.push_max_attempts:
            delay = retry_delay(attempts, outcome.retry_after, self.conf)
            for r in rows:
                r.due_at = self.now + timedelta(seconds=delay)
                r.reason = f"retrying: {outcome.error}"[:300]
                self.retry.append(r)
            return
        suffix = f" after {attempts} attempts" if outcome.retryable else ""
        self.close(rows, DeliveryState.FAILED, f"{outcome.error}{suffix}"[:300])

    def save(self) -> None:
        changes: list[tuple[str, str, str]] = []
        with transaction.atomic():
            for (state, reason), ids in self.final.items():
                fields: dict[str, Any] = {"state": state, "reason": reason, "due_at": None, "updated_at": self.now}
                if state == DeliveryState.SENT:
                    fields["sent_at"] = self.now
                for start in range(0, len(ids), 2000):
                    Delivery.objects.filter(pk__in=ids[start : start + 2000]).update(**fields)
                label = "truncated" if reason.startswith("truncated") else _reason_label(reason)
                changes.extend([(DeliveryChannel.PUSH, state, label)] * len(ids))
            for r in self.retry:
                r.updated_at = self.now
            Delivery.objects.bulk_update(self.retry, ["due_at", "reason", "updated_at"], batch_size=500)
            if self.ok_subs:
                # A fan-out succeeds on every device: write only rows that change meaning
                # (failing ones, or a last success older than SUCCESS_STAMP_SECONDS).
                stale = self.now - timedelta(seconds=SUCCESS_STAMP_SECONDS)
                PushSubscription.objects.filter(pk__in=self.ok_subs).filter(
                    Q(failures__gt=0) | Q(last_success_at__isnull=True) | Q(last_success_at__lt=stale)
                ).update(last_success_at=self.now, failures=0)
            if self.bad_subs:
                PushSubscription.objects.filter(pk__in=self.bad_subs).update(
                    last_failure_at=self.now, failures=F("failures") + 1
                )
            if self.gone_subs:
                PushSubscription.objects.filter(pk__in=self.gone_subs).delete()
        changes.extend((DeliveryChannel.PUSH, "retry", "") for _ in self.retry)
        metrics.count(changes)


def _reason_label(reason: str) -> str:
    """A low-cardinality label for /metrics from a free-text reason."""
    if not reason:
        return ""
    for known in SuppressReason.values:
        if reason == known:
            return known
    if reason.startswith("subscription expired"):
        return "gone"
    if reason.startswith("invalid subscription keys"):
        return "bad_keys"
    if "timeout" in reason:
        return "timeout"
    if reason.startswith("HTTP "):
        return reason[:8].strip().replace(" ", "_").lower()
    return "error"


def _of(row: Delivery) -> Notification | Announcement:
    """What a delivery delivers: its notification, else its announcement (the model's
    check constraint: exactly one of the two)."""
    if row.notification is not None:
        return row.notification
    assert row.announcement is not None
    return row.announcement


def deliver_rows(rows: list[Delivery], now: datetime) -> int:
    """Send claimed rows (notifications and announcements); returns pushes accepted."""
    if not rows:
        return 0
    conf = notification_settings()
    done = Outcomes(now, conf)
    key = vapid_key()
    if key is None:
        done.close(rows, DeliveryState.FAILED, "push is not configured (no VAPID key)")
        done.save()
        return 0
    live: list[Delivery] = []
    for r in rows:
        if r.subscription is None:
            done.close([r], DeliveryState.FAILED, "device removed")
        elif r.notification is not None and (r.notification.read_at or r.notification.dismissed_at):
            done.close([r], DeliveryState.CANCELLED, SuppressReason.READ)
        else:
            live.append(r)
    online = online_user_ids({r.user_id for r in live}) if live else set()
    batches: dict[tuple[int | None, str], list[Delivery]] = defaultdict(list)
    for r in live:
        priority = _of(r).priority
        if r.user_id in online and priority != Priority.URGENT:
            done.close([r], DeliveryState.CANCELLED, SuppressReason.ONLINE)
            continue
        # A device's pending notifications go as one push; announcements one each.
        group = "n" if r.notification is not None else f"a{r.pk}"
        batches[(r.subscription_id, group)].append(r)
    keys = list(batches)
    messages: list[PushMessage] = []
    subs: list[PushSubscription] = []
    for sub_id, group in keys:
        group_rows = batches[(sub_id, group)]
        sub = group_rows[0].subscription
        assert sub is not None  # rows without a device were closed above
        subs.append(sub)
        if group == "n":
            messages.append(notification_message(sub, group_rows))
        else:
            announcement = _of(group_rows[0])
            assert isinstance(announcement, Announcement)  # an "a…" group holds one announcement
            messages.extend(announcement_messages(announcement, [(group_rows[0], sub)]))
    outcomes = send_pushes(conf, key, messages)
    accepted = 0
    for (sub_id, group), outcome, sub in zip(keys, outcomes, subs, strict=True):
        done.outcome(batches[(sub_id, group)], outcome, sub)
        accepted += outcome.accepted
    done.save()
    if done.retry:
        soonest = min(r.due_at for r in done.retry if r.due_at is not None)
        _enqueue_retry(sorted({r.user_id for r in done.retry if r.notification_id}), soonest, now)
    return accepted


def _enqueue_retry(user_ids: list[int], due: datetime, now: datetime) -> None:
    delay = max(0.0, (due - now).total_seconds())
    for uid in user_ids:
        enqueue_quietly("notifications.tasks.push_user", args=[uid], countdown=delay)
    # Announcement retries are picked up by the periodic sweep (push_due).


def push_user(*, user_id: int, now: datetime) -> int:
    """Deliver the user's due pushes (the task after a send, and retries)."""
    rows = claim(Delivery.objects.filter(user_id=user_id, channel=DeliveryChannel.PUSH), now, limit=500)
    return deliver_rows(rows, now)


def push_due(*, now: datetime, limit: int = 5000) -> int:
    """The sweep: every due push (retries, lost task messages), in claimed batches."""
    conf = notification_settings()
    sent = 0
    queued = Delivery.objects.filter(channel=DeliveryChannel.PUSH)
    while limit > 0:
        rows = claim(queued, now, min(limit, conf.push_chunk_size))
        if not rows:
            break
        limit -= len(rows)
        sent += deliver_rows(rows, now)
    return sent


# --- receipts from the service worker -----------------------------------------------------


def push_receipt(*, token: str, event: str, now: datetime) -> int:
    """The service worker showed (`shown`) or the user clicked (`clicked`) a push: the
    deliveries become `delivered`. Returns rows changed; raises signing.BadSignature."""
    ids = signing.loads(token, salt=RECEIPT_SALT, max_age=RECEIPT_MAX_AGE)
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise signing.BadSignature("malformed receipt")
    rows = Delivery.objects.filter(pk__in=ids, channel=DeliveryChannel.PUSH)
    changed = rows.filter(delivered_at__isnull=True).update(
        state=DeliveryState.DELIVERED, delivered_at=now, updated_at=now
    )
    if event == "clicked":
        rows.filter(clicked_at__isnull=True).update(clicked_at=now, updated_at=now)
    metrics.count([(DeliveryChannel.PUSH, DeliveryState.DELIVERED, "")] * changed)
    return changed
