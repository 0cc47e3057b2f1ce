"""Source health writes: a poll's outcome, backoff, enable/disable, reset."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F

from ..backoff import backoff_seconds
from ..conf import PricesSettings, prices_settings
from ..models import Source
from ..sources.base import SourceError


def source_record_poll(
    *,
    slug: str,
    now: datetime,
    error: SourceError | None = None,
    error_detail: str = "",
    accepted: int = 0,
    problems: Counter[str] | None = None,
    outliers: int = 0,
    polled: bool = True,
    current: Source | None = None,
    conf: PricesSettings | None = None,
) -> bool:
    """Record one poll (or an overview request when `polled` is False) of a source.

    A success clears the failure streak; a failure extends it and sets `backoff_until`
    (Retry-After wins when longer; HTTP 451 blocks for PERMANENT_BACKOFF). Counters of
    bad input and outliers accumulate and show in the admin.

    `current` is the row as read before (the tick reads all sources once): the write is
    then a single UPDATE, so it can sit in the tick's transaction without a read before
    it (SQLite refuses to upgrade a read transaction another writer got ahead of).
    Returns False if the source no longer exists.
    """
    conf = conf or prices_settings()
    row = current if current is not None else Source.objects.filter(slug=slug).first()
    if row is None:
        return False
    fields: dict[str, Any] = {
        "quotes_accepted": F("quotes_accepted") + accepted,
        "outliers": F("outliers") + outliers,
    }
    if polled:
        fields.update(last_polled_at=now, total_polls=F("total_polls") + 1)
    new = {k: v for k, v in (problems or Counter()).items() if v}
    if new:
        merged = Counter({k: int(v) for k, v in (row.problems or {}).items()})
        merged.update(new)
        fields["problems"] = dict(merged)
    if error is None:
        fields.update(last_success_at=now, consecutive_failures=0, backoff_until=None)
    else:
        failures = row.consecutive_failures + 1
        delay = backoff_seconds(
            failures,
            base=conf.backoff_base,
            cap=conf.backoff_max,
            retry_after=error.retry_after,
            permanent=conf.permanent_backoff if error.permanent else None,
        )
        fields.update(
            consecutive_failures=failures,
            total_failures=F("total_failures") + 1,
            last_error_at=now,
            last_error=error.code[:40],
            last_error_detail=(error_detail or str(error))[:500],
            backoff_until=now + timedelta(seconds=delay),
        )
    return Source.objects.filter(slug=slug).update(**fields) > 0


def source_set_enabled(*, slug: str, enabled: bool) -> int:
    """Enable or disable a source; the next tick obeys (no restart)."""
    return Source.objects.filter(slug=slug).update(enabled=enabled)


def source_reset_health(*, slug: str) -> int:
    """Clear a source's failure streak and backoff (e.g. after moving off a 451 host)."""
    return Source.objects.filter(slug=slug).update(
        consecutive_failures=0, backoff_until=None, last_error="", last_error_detail=""
    )


def source_add_counts(*, slug: str, outliers: int = 0) -> int:
    """Count outliers against a source that was not polled this tick (its older quotes)."""
    return Source.objects.filter(slug=slug).update(outliers=F("outliers") + outliers)


def sources_record_streams(
    *,
    streams: dict[str, dict[str, Any]],
    problems: dict[str, Counter[str]],
    outliers: Counter[str],
    reconciliation: dict[str, dict[str, Any]],
    rest_modes: dict[str, str],
    now: float | None = None,
) -> None:
    """Write the feed process's view of each source: stream health, bad input, outliers.

    One UPDATE per source that has something to write (a handful every few seconds).
    `stream_health` gets `updated_at` (epoch seconds) so readers can tell a live report
    from one a dead process left behind.
    """
    now = time.time() if now is None else now
    slugs = set(streams) | set(problems) | set(outliers) | set(reconciliation) | set(rest_modes)
    if not slugs:
        return
    current = {row.slug: row for row in Source.objects.filter(slug__in=slugs)}
    for slug in slugs:
        row = current.get(slug)
        if row is None:
            continue
        fields: dict[str, Any] = {}
        if slug in streams:
            fields["stream_health"] = {**streams[slug], "rest": rest_modes.get(slug), "updated_at": now}
        new = {k: int(v) for k, v in (problems.get(slug) or Counter()).items() if v}
        if new:
            merged = Counter({k: int(v) for k, v in (row.problems or {}).items()})
            merged.update(new)
            fields["problems"] = dict(merged)
        if outliers.get(slug):
            fields["outliers"] = F("outliers") + outliers[slug]
        if slug in reconciliation:
            fields["reconciliation"] = reconciliation[slug]
        if fields:
            Source.objects.filter(slug=slug).update(**fields)
