"""The outbox: durable publications survive a Redis outage and a process dying mid-way.

A notification or a wallet event is a row in the database *and* a publication that tells
the user's open tabs. `publish_on_commit(..., durable=True)` (and `publish_many_on_commit`)
write the publication into `PendingPublication` **in the caller's transaction**, so it
exists exactly when the data it announces does. After commit the publication is sent
with the row's key as its idempotency key, and the row deleted. If the send fails (Redis
down or restarting) or the process dies between commit and send (kill -9 of a worker),
the row stays; `flush()` — run every second by the active feed process (the
`gateway.outbox` feed) — sends it again, oldest first, with the same key: the
publication script returns the first result for a key it has seen (24 h), so a retry
never publishes twice, and a client gets every durable publication exactly once.

One case can still repeat a publication: Redis restarted (its idempotency keys are
gone) after it stored and sent a publication but before the row was deleted, a window of
one round trip. The client then sees the event again in the new epoch; notification and
wallet events carry their ids, and the client keeps one item per id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .protocol import ChannelName
from .publisher import publish_encoded, run_sync, validate_channel

logger = logging.getLogger("realtime.outbox")

#: A new row is left to its own after-commit send this long before the flusher may.
GRACE_SECONDS = 5.0
#: A row the flusher took is due again after this if the flusher died meanwhile.
CLAIM_SECONDS = 30.0
#: Retry delays after failed sends: base · 2^attempts, capped.
RETRY_BASE, RETRY_CAP = 1.0, 30.0
#: Rows per flush round.
FLUSH_LIMIT = 200


def add(items: list[tuple[ChannelName, str]], key: str, *, using: str | None = None) -> None:
    """Write the publication into the outbox (inside the caller's transaction)."""
    from .models import PendingPublication

    now = timezone.now()
    PendingPublication.objects.using(using).create(
        key=key,
        items=[[name.name, payload] for name, payload in items],
        created_at=now,
        due_at=now + timedelta(seconds=GRACE_SECONDS),
    )


def confirm(key: str, *, using: str | None = None) -> None:
    """The publication went out: forget it."""
    from .models import PendingPublication

    PendingPublication.objects.using(using).filter(key=key).delete()


@dataclass(slots=True)
class FlushResult:
    sent: int = 0
    failed: int = 0
    #: Rows taken in this round (a full round means more may be due).
    claimed: int = 0
    error: str = ""


def _retry_at(now: datetime, attempts: int) -> datetime:
    return now + timedelta(seconds=min(RETRY_CAP, RETRY_BASE * 2 ** max(0, attempts - 1)))


def flush(*, limit: int = FLUSH_LIMIT, now: datetime | None = None) -> FlushResult:
    """Send the due rows, oldest first, each with its own key; stop at the first failure
    (Redis is down: the rest would fail too, and sending later rows first would reorder
    a channel). Safe to run in several processes at once (rows are taken with SKIP LOCKED)."""
    from .models import PendingPublication

    now = now or timezone.now()
    result = FlushResult()
    with transaction.atomic():
        ids = list(
            PendingPublication.objects.filter(due_at__lte=now)
            .order_by("pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return result
        PendingPublication.objects.filter(pk__in=ids).update(
            due_at=now + timedelta(seconds=CLAIM_SECONDS), attempts=F("attempts") + 1
        )
    rows = list(PendingPublication.objects.filter(pk__in=ids).order_by("pk"))
    result.claimed = len(rows)
    for index, row in enumerate(rows):
        try:
            items = [(validate_channel(str(channel)), str(payload)) for channel, payload in row.items]
            run_sync(publish_encoded(items, row.key))
        except ValueError as exc:  # a channel that no longer exists: it can never be sent
            logger.error("outbox: dropping %s: %s", row.key, exc)
            row.delete()
            result.failed += 1
            continue
        except Exception as exc:
            result.error = f"{type(exc).__name__}: {exc}"[:300]
            retry = _retry_at(timezone.now(), row.attempts)
            pending = [r.pk for r in rows[index:]]
            PendingPublication.objects.filter(pk__in=pending).update(due_at=retry, last_error=result.error)
            result.failed += len(pending)
            logger.warning(
                "outbox: %d publication(s) still pending (%s); next try at %s", len(pending), result.error, retry
            )
            break
        row.delete()
        result.sent += 1
    if result.sent:
        logger.info("outbox: %d pending publication(s) sent", result.sent)
    return result


def pending_count() -> int:
    from .models import PendingPublication

    return PendingPublication.objects.count()


def stats() -> dict[str, Any]:
    from .models import PendingPublication

    oldest = PendingPublication.objects.order_by("pk").values_list("created_at", flat=True).first()
    return {
        "pending": PendingPublication.objects.count(),
        "oldest_age": round((timezone.now() - oldest).total_seconds(), 1) if oldest else None,
    }
