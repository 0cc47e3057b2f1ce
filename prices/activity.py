"""Which process aggregates prices now: the feed process (streams) or the REST tick (a cache flag)."""

from __future__ import annotations

from django.core.cache import cache

#: Cache key a running feed process refreshes while it aggregates and publishes prices.
ACTIVE_KEY = "prices:streams:active"
#: It outlives this many seconds of silence: a dead feed process hands back to the tick.
ACTIVE_TTL = 10.0


def streams_active() -> bool:
    """Whether a feed process aggregates prices now (the REST tick then stands aside)."""
    return bool(cache.get(ACTIVE_KEY))


def streams_mark_active() -> None:
    cache.set(ACTIVE_KEY, 1, ACTIVE_TTL)


def streams_mark_inactive() -> None:
    cache.delete(ACTIVE_KEY)
