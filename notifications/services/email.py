"""Email: urgent/high notifications after a grace period, the daily digest, one-click unsubscribe.

Django's email backend sends (console in embedded mode, SMTP by environment in
production). Queued `Delivery` rows (channel `email`) are the work, as for push: when
a row is due (created + `EMAIL_GRACE_SECONDS`) it is cancelled if the user read the
notification (or announcement: `announcement_email`) elsewhere, if it expired, or if
the user has an open socket; suppressed if muted/quiet hours began meanwhile; else
sent. SMTP trouble (refused connection, timeout, a server that drops the connection
mid-message, 4xx answers) is retried with backoff until
`EMAIL_MAX_ATTEMPTS`; a 5xx answer fails at once with the server's words.

Every email carries a signed per-category unsubscribe link and RFC 2369/8058 headers
(`List-Unsubscribe`, `List-Unsubscribe-Post: List-Unsubscribe=One-Click`).
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse

from realtime_project.gateway.api import online_user_ids

from .. import metrics, selectors
from ..choices import DeliveryChannel, DeliveryState, NotificationType, SuppressReason
from ..conf import notification_settings
from ..models import Announcement, AnnouncementReceipt, Delivery, DeliverySettings, Notification
from ..policy import DIGEST_PRIORITIES, zone
from .outbox import claim, retry_delay
from .preferences import channel_set
from .queue import enqueue_quietly

logger = logging.getLogger("notifications.email")

UNSUBSCRIBE_SALT = "notifications.unsubscribe"
#: The category of the daily digest's unsubscribe link (the others are notification types).
DIGEST = "digest"
DIGEST_MAX_ITEMS = 50


class BadUnsubscribeLink(ValueError):
    def __init__(self, message: str, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


# --- unsubscribe links -------------------------------------------------------------------


def unsubscribe_token(user_id: int, category: str) -> str:
    return signing.dumps({"u": user_id, "c": category}, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_url(user_id: int, category: str) -> str:
    path = reverse("notifications-unsubscribe", args=[unsubscribe_token(user_id, category)])
    return f"{notification_settings().site_url}{path}"


def unsubscribe_check(token: str) -> tuple[int, str]:
    """(user id, category) of a valid link; raises BadUnsubscribeLink (tampered, expired)."""
    max_age = timedelta(days=notification_settings().unsubscribe_max_age_days)
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise BadUnsubscribeLink("this unsubscribe link has expired", expired=True) from None
    except signing.BadSignature:
        raise BadUnsubscribeLink("this unsubscribe link is not valid") from None
    category = data.get("c") if isinstance(data, dict) else None
    user_id = data.get("u") if isinstance(data, dict) else None
    if not isinstance(user_id, int) or category not in {*NotificationType.values, DIGEST}:
        raise BadUnsubscribeLink("this unsubscribe link is not valid")
    return user_id, category


def category_label(category: str) -> str:
    return "the daily digest" if category == DIGEST else f"{NotificationType(category).label.lower()} emails"


def unsubscribe_apply(token: str) -> tuple[int, str]:
    """One click: turn off email for the link's category (or the digest). Idempotent."""
    user_id, category = unsubscribe_check(token)
    if category == DIGEST:
        DeliverySettings.objects.update_or_create(user_id=user_id, defaults={"email_digest": False})
    else:
        channel_set(user_id=user_id, type=category, channel=DeliveryChannel.EMAIL, enabled=False)
    logger.info("user %s unsubscribed from %s", user_id, category)
    return user_id, category


# --- rendering ---------------------------------------------------------------------------


def _message(
    *, to: str, subject: str, template: str, context: dict[str, Any], user_id: int, category: str
) -> EmailMultiAlternatives:
    conf = notification_settings()
    unsubscribe = unsubscribe_url(user_id, category)
    context = {
        **context,
        "site_url": conf.site_url,
        "preferences_url": f"{conf.site_url}{reverse('notifications-preferences')}",
        "unsubscribe_url": unsubscribe,
        "category_label": category_label(category),
    }
    text = render_to_string(f"notifications/email/{template}.txt", context)
    html = render_to_string(f"notifications/email/{template}.html", context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={
            # RFC 2369 + RFC 8058: mail clients show "Unsubscribe" and POST to it.
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            # RFC 3834: no auto-replies to this.
            "Auto-Submitted": "auto-generated",
        },
    )
    message.attach_alternative(html, "text/html")
    return message


def _item_email(*, to: str, user_id: int, public_id: str, type: str, item: dict[str, Any]) -> EmailMultiAlternatives:
    """One notification's email; `item` has what the template shows (title, body,
    get_priority_display, created_at)."""
    return _message(
        to=to,
        subject=item["title"],
        template="notification",
        context={
            "notification": item,
            "type_label": NotificationType(type).label,
            "open_url": f"{notification_settings().site_url}/?notification={public_id}",
        },
        user_id=user_id,
        category=type,
    )


def notification_email(notification: Notification, to: str) -> EmailMultiAlternatives:
    n = notification
    item = {
        "title": n.title,
        "body": n.body,
        "get_priority_display": n.get_priority_display(),
        "created_at": n.created_at,
    }
    return _item_email(to=to, user_id=n.user_id, public_id=f"n:{n.pk}", type=n.type, item=item)


def announcement_email(announcement: Announcement, user_id: int, to: str) -> EmailMultiAlternatives:
    """An announcement is a notification of type `system_announcement` (id `a:<id>`)."""
    a = announcement
    created = a.published_at or a.publish_at
    item = {"title": a.title, "body": a.body, "get_priority_display": a.get_priority_display(), "created_at": created}
    return _item_email(
        to=to, user_id=user_id, public_id=f"a:{a.pk}", type=NotificationType.SYSTEM_ANNOUNCEMENT, item=item
    )


# --- sending -----------------------------------------------------------------------------


def _smtp_error(exc: BaseException) -> tuple[bool, str]:
    """(retry?, reason) for what sending raised."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        words = "; ".join(
            f"{c} {m.decode(errors='replace') if isinstance(m, bytes) else m}" for c, m in exc.recipients.values()
        )
        return all(400 <= c < 500 for c in codes), f"SMTP refused the recipient: {words}"
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return 400 <= exc.smtp_code < 500, f"SMTP {exc.smtp_code} {text}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if "timed out" in str(exc):  # smtplib reports a read timeout as a disconnect
            return True, "SMTP timeout: the server did not answer"
        return True, f"SMTP server disconnected: {exc}"
    if isinstance(exc, TimeoutError):
        return True, "SMTP timeout"
    if isinstance(exc, OSError):
        return True, f"SMTP connection failed: {exc.strerror or exc}"
    return False, f"{type(exc).__name__}: {exc}"


def _seen_announcements(rows: list[Delivery]) -> set[tuple[int, int]]:
    """(announcement id, user id) of the rows' announcements the user read or dismissed."""
    pairs = {(r.announcement_id, r.user_id) for r in rows if r.announcement_id is not None}
    if not pairs:
        return set()
    seen = AnnouncementReceipt.objects.filter(
        announcement_id__in={a for a, _ in pairs}, user_id__in={u for _, u in pairs}
    ).filter(Q(read_at__isnull=False) | Q(dismissed_at__isnull=False))
    return set(seen.values_list("announcement_id", "user_id")) & pairs


def _item(r: Delivery, now: datetime) -> tuple[str, str, bool, bool]:
    """(type, priority, read or dismissed, expired) of a row's notification or announcement."""
    if r.notification is not None:
        n = r.notification
        return n.type, n.priority, n.read_at is not None or n.dismissed_at is not None, False
    a = r.announcement
    assert a is not None
    return NotificationType.SYSTEM_ANNOUNCEMENT, a.priority, False, a.expires_at is not None and a.expires_at <= now


def email_due(*, now: datetime, limit: int = 500) -> int:
    """Send the due emails of notifications and announcements (grace period over);
    returns emails sent. A full batch enqueues the next one at once."""
    conf = notification_settings()
    rows = claim(Delivery.objects.filter(channel=DeliveryChannel.EMAIL), now, limit)
    if not rows:
        return 0
    users = {u.pk: u for u in get_user_model().objects.filter(pk__in={r.user_id for r in rows})}
    online = online_user_ids(users)
    seen = _seen_announcements(rows)
    final: list[tuple[Delivery, str, str]] = []
    to_send: list[Delivery] = []
    policies: dict[int, Any] = {}
    for r in rows:
        type_, priority, read, expired = _item(r, now)
        user = users.get(r.user_id)
        if read or (r.announcement_id, r.user_id) in seen:
            final.append((r, DeliveryState.CANCELLED, SuppressReason.READ))
        elif expired:
            final.append((r, DeliveryState.CANCELLED, SuppressReason.EXPIRED))
        elif r.user_id in online:
            final.append((r, DeliveryState.CANCELLED, SuppressReason.ONLINE))
        elif user is None or not user.email or not user.is_active:
            final.append((r, DeliveryState.SUPPRESSED, SuppressReason.NO_ADDRESS))
        else:
            policy = policies.setdefault(r.user_id, selectors.user_policy(r.user_id))
            reason = policy.suppression(
                type=type_,
                channel=DeliveryChannel.EMAIL,
                priority=priority,
                now=now,
                urgent_breaks_through=conf.quiet_hours_urgent_breaks_through,
            )
            if reason:
                final.append((r, DeliveryState.SUPPRESSED, reason))
            else:
                to_send.append(r)
    retry: list[tuple[Delivery, str]] = []
    sent = 0
    connection = get_connection(fail_silently=False)
    try:
        for r in to_send:
            to = users[r.user_id].email
            if r.notification is not None:
                message = notification_email(r.notification, to)
            else:
                assert r.announcement is not None
                message = announcement_email(r.announcement, r.user_id, to)
            try:
                connection.send_messages([message])
            except Exception as exc:
                transient, reason = _smtp_error(exc)
                logger.warning("email %s to user %s failed: %s", r.pk, r.user_id, reason)
                _reset(connection)
                if transient and r.attempts < conf.email_max_attempts:
                    retry.append((r, reason))
                else:
                    suffix = f" (after {r.attempts} attempts)" if transient else ""
                    final.append((r, DeliveryState.FAILED, f"{reason}{suffix}"[:300]))
                continue
            final.append((r, DeliveryState.SENT, ""))
            sent += 1
    finally:
        _reset(connection)
    _record(final, retry, now)
    if len(rows) == limit:
        enqueue_quietly("notifications.tasks.email_due")  # more may be due (an announcement's audience)
    return sent


def _reset(connection: Any) -> None:
    """Close the SMTP connection so the next message opens a fresh one (after a drop)."""
    try:
        connection.close()
    except Exception:
        pass


def _record(final: list[tuple[Delivery, str, str]], retry: list[tuple[Delivery, str]], now: datetime) -> None:
    conf = notification_settings()
    with transaction.atomic():
        for r, state, reason in final:
            r.state, r.reason, r.due_at, r.updated_at = state, reason, None, now
            if state == DeliveryState.SENT:
                r.sent_at = now
        for r, reason in retry:
            r.reason = f"retrying: {reason}"[:300]
            r.due_at = now + timedelta(seconds=retry_delay(r.attempts, None, conf))
            r.updated_at = now
        rows = [r for r, *_ in final] + [r for r, _ in retry]
        Delivery.objects.bulk_update(rows, ["state", "reason", "due_at", "updated_at", "sent_at"], batch_size=500)
    metrics.count(
        [
            (DeliveryChannel.EMAIL, state, reason if state != DeliveryState.FAILED else "error")
            for _, state, reason in final
        ]
        + [(DeliveryChannel.EMAIL, "retry", "")] * len(retry)
    )
    if retry:
        soonest = min(r.due_at for r, _ in retry if r.due_at is not None)
        enqueue_quietly("notifications.tasks.email_due", countdown=max(0.0, (soonest - now).total_seconds()))


# --- the daily digest --------------------------------------------------------------------


def email_digests_due(*, now: datetime) -> int:
    """Send the daily digest to every user whose local digest hour has come today.

    Unread low/medium notifications since the last digest, of the types whose email
    channel is on; none: no email (the day still counts as done). Muted or in quiet
    hours: tried again at the next sweep. A failed send is retried at the next sweep.
    """
    conf = notification_settings()
    sent = 0
    candidates = DeliverySettings.objects.filter(email_digest=True, user__is_active=True).exclude(user__email="")
    for row in candidates.select_related("user").order_by("pk").iterator(chunk_size=500):
        local = now.astimezone(zone(row.time_zone))
        if local.hour < conf.email_digest_hour or row.last_email_digest_on == local.date():
            continue
        policy = selectors.user_policy(row.user_id)
        if policy.muted(now) or policy.quiet(now):
            continue
        since = row.last_email_digest_at or now - timedelta(days=1)
        items = [
            n
            for n in Notification.objects.filter(
                user_id=row.user_id,
                read_at__isnull=True,
                dismissed_at__isnull=True,
                priority__in=DIGEST_PRIORITIES,
                created_at__gt=since,
                created_at__lte=now,
            ).order_by("-created_at", "-id")[: DIGEST_MAX_ITEMS * 4]
            if policy.allows(n.type, DeliveryChannel.EMAIL)
        ][:DIGEST_MAX_ITEMS]
        if items and not _send_digest(row, items, now):
            continue
        sent += bool(items)
        DeliverySettings.objects.filter(pk=row.pk).update(last_email_digest_on=local.date(), last_email_digest_at=now)
    return sent


def _send_digest(row: DeliverySettings, items: list[Notification], now: datetime) -> bool:
    conf = notification_settings()
    message = _message(
        to=row.user.email,
        subject=f"Your daily digest: {len(items)} unread notification{'s' if len(items) != 1 else ''}",
        template="digest",
        context={
            "items": [
                {
                    "n": n,
                    "type_label": NotificationType(n.type).label,
                    "open_url": f"{conf.site_url}/?notification=n:{n.pk}",
                }
                for n in items
            ],
            "count": len(items),
        },
        user_id=row.user_id,
        category=DIGEST,
    )
    try:
        message.send()
    except Exception as exc:
        logger.warning("daily digest to user %s failed (retried next sweep): %s", row.user_id, _smtp_error(exc)[1])
        metrics.count([(DeliveryChannel.EMAIL, "retry", "")])
        return False
    Delivery.objects.bulk_create(
        Delivery(
            notification=n,
            user_id=row.user_id,
            channel=DeliveryChannel.EMAIL,
            state=DeliveryState.SENT,
            reason="daily digest",
            attempts=1,
            created_at=now,
            updated_at=now,
            sent_at=now,
        )
        for n in items
    )
    metrics.count([(DeliveryChannel.EMAIL, DeliveryState.SENT, "digest")] * len(items))
    return True
