"""The `NOTIFICATIONS` setting: documented defaults, overridable by `NOTIFICATIONS_<KEY>` env
vars and `settings.NOTIFICATIONS` (in that order: `realtime_project.appsettings`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from realtime_project.appsettings import AppSettings

DEFAULTS: dict[str, Any] = {
    # Seconds a burst of low-priority notifications of one type is held before it is
    # delivered (one item as itself, several as one digest). Long enough to catch a
    # burst (a marketplace sweep), short enough that "low" still feels live.
    "DIGEST_WINDOW": 60.0,
    # Items listed inside a digest's `data.items` (the count is always exact).
    "DIGEST_MAX_ITEMS": 20,
    # Notifications in a (re)subscriber's snapshot (the protocol contract says <= 50).
    "SNAPSHOT_SIZE": 50,
    # Page size of the REST list (cursor pagination) and its upper bound.
    "PAGE_SIZE": 50,
    "MAX_PAGE_SIZE": 200,
    # Celery queue for this app's tasks; None: the default queue (tests use their own).
    "CELERY_QUEUE": None,
    # Batched items (the raw members of digests) are kept this long for dedupe/audit.
    "BATCHED_ITEM_RETENTION_DAYS": 30,
    # --- delivery beyond the socket (issue #14, docs/notifications.md "Delivery") --------
    # Absolute address of the site, for links in emails (unsubscribe, "open").
    "SITE_URL": "http://127.0.0.1:8000",
    # Urgent/high notifications wait this long for the user to read them elsewhere before
    # they go out by email (an email that arrives after the user saw it is noise).
    "EMAIL_GRACE_SECONDS": 120.0,
    # Local hour (user's time zone) after which the optional daily digest goes out.
    "EMAIL_DIGEST_HOUR": 8,
    # Unsubscribe links stay valid this long (a signed timestamp; older links expire).
    "UNSUBSCRIBE_MAX_AGE_DAYS": 90,
    # Urgent notifications are delivered during quiet hours (a security warning should
    # wake the user; everything else waits for the morning inbox).
    "QUIET_HOURS_URGENT_BREAKS_THROUGH": True,
    # VAPID (RFC 8292): a P-256 private key (PEM or base64url raw). Empty: embedded mode
    # generates one and keeps it in VAPID_KEY_FILE; production without one has no push.
    "VAPID_PRIVATE_KEY": "",
    "VAPID_KEY_FILE": "",
    # The `sub` claim: how the push service contacts the operator (mailto: or https:).
    "VAPID_SUBJECT": "mailto:ops@example.com",
    # Subscription endpoints must be https on a public address (no SSRF). Tests of the
    # local push service on loopback turn these two on; never in production.
    "PUSH_ALLOW_INSECURE": False,
    "PUSH_ALLOW_PRIVATE": False,
    # Optional allow-list of push service host suffixes (empty: any public host).
    "PUSH_ALLOWED_HOSTS": [],
    # Seconds to wait for a push service's answer before the attempt counts as failed.
    "PUSH_TIMEOUT": 10.0,
    # Attempts (first try included) before a push or email is failed with its reason.
    "PUSH_MAX_ATTEMPTS": 5,
    "EMAIL_MAX_ATTEMPTS": 5,
    # Backoff of retries: full jitter over base * 2**attempt, capped; Retry-After wins.
    "RETRY_BASE_SECONDS": 5.0,
    "RETRY_MAX_SECONDS": 600.0,
    # Concurrent requests to push services per worker, and subscriptions per fan-out task.
    # A worker's push rate is at most PUSH_CONCURRENCY / the push service's round trip:
    # 64 in flight at 50 ms is 1,280/s at best (888-949/s measured), 256 about 1,900/s
    # (docs/benchmarks.md); each in-flight push holds one connection and one encrypted body.
    "PUSH_CONCURRENCY": 256,
    "PUSH_CHUNK_SIZE": 1000,
    # Plaintext budget of one push message: RFC 8291 guarantees 4096 bytes of ciphertext
    # (3993 of plaintext); the body is cut to fit before sending, and again on a 413.
    "PUSH_MAX_PAYLOAD_BYTES": 3800,
    # What the service worker shows (paths on this site).
    "PUSH_ICON": "/static/notifications/icon-192.png",
}

NOTIFICATIONS = AppSettings(
    "NOTIFICATIONS",
    DEFAULTS,
    env_prefix="NOTIFICATIONS_",
    # Variables named before the helper existed (README's configuration table).
    env_names={"SITE_URL": "SITE_URL", "QUIET_HOURS_URGENT_BREAKS_THROUGH": "NOTIFICATIONS_QUIET_URGENT"},
)


@dataclass(frozen=True)
class NotificationSettings:
    digest_window: float
    digest_max_items: int
    snapshot_size: int
    page_size: int
    max_page_size: int
    celery_queue: str | None
    batched_item_retention_days: int
    site_url: str = "http://127.0.0.1:8000"
    email_grace_seconds: float = 120.0
    email_digest_hour: int = 8
    unsubscribe_max_age_days: int = 90
    quiet_hours_urgent_breaks_through: bool = True
    vapid_private_key: str = ""
    vapid_key_file: str = ""
    vapid_subject: str = "mailto:ops@example.com"
    push_allow_insecure: bool = False
    push_allow_private: bool = False
    push_allowed_hosts: tuple[str, ...] = ()
    push_timeout: float = 10.0
    push_max_attempts: int = 5
    email_max_attempts: int = 5
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 600.0
    push_concurrency: int = 256
    push_chunk_size: int = 1000
    push_max_payload_bytes: int = 3800
    push_icon: str = ""


def notification_settings() -> NotificationSettings:
    """The typed settings (built once per reload: `override_settings` takes effect)."""
    return NOTIFICATIONS.build(_notification_settings)


def _notification_settings(merged: Mapping[str, Any]) -> NotificationSettings:
    return NotificationSettings(
        digest_window=float(merged["DIGEST_WINDOW"]),
        digest_max_items=int(merged["DIGEST_MAX_ITEMS"]),
        snapshot_size=int(merged["SNAPSHOT_SIZE"]),
        page_size=int(merged["PAGE_SIZE"]),
        max_page_size=int(merged["MAX_PAGE_SIZE"]),
        celery_queue=merged["CELERY_QUEUE"] or None,
        batched_item_retention_days=int(merged["BATCHED_ITEM_RETENTION_DAYS"]),
        site_url=str(merged["SITE_URL"]).rstrip("/"),
        email_grace_seconds=float(merged["EMAIL_GRACE_SECONDS"]),
        email_digest_hour=int(merged["EMAIL_DIGEST_HOUR"]),
        unsubscribe_max_age_days=int(merged["UNSUBSCRIBE_MAX_AGE_DAYS"]),
        quiet_hours_urgent_breaks_through=bool(merged["QUIET_HOURS_URGENT_BREAKS_THROUGH"]),
        vapid_private_key=str(merged["VAPID_PRIVATE_KEY"]),
        vapid_key_file=str(merged["VAPID_KEY_FILE"]),
        vapid_subject=str(merged["VAPID_SUBJECT"]),
        push_allow_insecure=bool(merged["PUSH_ALLOW_INSECURE"]),
        push_allow_private=bool(merged["PUSH_ALLOW_PRIVATE"]),
        push_allowed_hosts=tuple(str(h).strip().lower() for h in merged["PUSH_ALLOWED_HOSTS"] if str(h).strip()),
        push_timeout=float(merged["PUSH_TIMEOUT"]),
        push_max_attempts=int(merged["PUSH_MAX_ATTEMPTS"]),
        email_max_attempts=int(merged["EMAIL_MAX_ATTEMPTS"]),
        retry_base_seconds=float(merged["RETRY_BASE_SECONDS"]),
        retry_max_seconds=float(merged["RETRY_MAX_SECONDS"]),
        push_concurrency=int(merged["PUSH_CONCURRENCY"]),
        push_chunk_size=int(merged["PUSH_CHUNK_SIZE"]),
        push_max_payload_bytes=int(merged["PUSH_MAX_PAYLOAD_BYTES"]),
        push_icon=str(merged["PUSH_ICON"]),
    )
