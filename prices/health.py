"""The `prices` readiness check of /readyz (and the staff source-health endpoint):
per-source health, polled and streamed, and whether any source is live."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from .conf import PricesSettings, prices_settings
from .models import LatestPrice, Source
from .selectors import known_symbols, source_allowed, stream_url


def readiness(conf: PricesSettings | None = None) -> dict[str, Any]:
    """The `prices` entry of /readyz: per-source health, and whether any source is live."""
    conf = conf or prices_settings()
    now = timezone.now()
    silence = timedelta(seconds=conf.ready_max_silence)
    sources: dict[str, Any] = {}
    live = False
    for row in Source.objects.all():
        allowed = source_allowed(row.kind, conf)
        polled_ok = bool(row.last_success_at and now - row.last_success_at <= silence)
        stream = _stream_report(row, conf, now)
        healthy = polled_ok or bool(stream and stream["ok"])
        if row.enabled and allowed and healthy:
            live = True
        entry: dict[str, Any] = {
            "enabled": row.enabled and allowed,
            "ok": healthy,
            "consecutive_failures": row.consecutive_failures,
            "in_backoff": bool(row.backoff_until and row.backoff_until > now),
            "last_error": row.last_error or None,
            "outliers": row.outliers,
        }
        if stream is not None:
            entry["stream"] = stream
        if row.reconciliation:
            entry["reconciliation"] = row.reconciliation
        sources[row.slug] = entry
    latest = LatestPrice.objects.order_by("-published_at").values_list("published_at", flat=True).first()
    priced = set(LatestPrice.objects.values_list("symbol__symbol", flat=True))
    return {
        "ok": live,
        "sources": sources,
        # Active symbols that never got a price: unknown to every enabled source.
        "unpriced": sorted(known_symbols() - priced),
        "last_published_age": round((now - latest).total_seconds(), 1) if latest else None,
    }


#: Stream health older than this many seconds was written by a feed process that is gone.
STREAM_HEALTH_MAX_AGE = 15.0


def _stream_report(row: Source, conf: PricesSettings, now: datetime) -> dict[str, Any] | None:
    """A streamed source's health as the feed process last wrote it (None: not streamed)."""
    if stream_url(row, conf) is None:
        return None
    health = dict(row.stream_health or {})
    if not health:
        return {"ok": False, "state": "not_started", "detail": "no feed process has streamed this venue"}
    written = health.pop("updated_at", None)
    age = now.timestamp() - float(written) if written else None
    if age is None or age > STREAM_HEALTH_MAX_AGE:
        return {"ok": False, "state": "unknown", "detail": "the feed process stopped reporting", "report_age": age}
    if health.get("last_message_age") is not None:
        health["last_message_age"] = round(float(health["last_message_age"]) + age, 3)
    health["report_age"] = round(age, 3)
    return health
