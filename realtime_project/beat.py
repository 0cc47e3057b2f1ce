"""Celery beat as a singleton by lease: run two beats, only one schedules.

`LeasedScheduler` is django-celery-beat's `DatabaseScheduler` (the schedule lives in the
database, edited in the admin) that sends due tasks only while it holds the beat lease
in Redis (`realtime_project/lease.py`); a second beat stands by, trying every
`lease.RETRY_EVERY` seconds, and takes over at its next try when the first is killed (its
Redis connection closed), or within the lease's duration when the first is paused. Two
beats never double-schedule:

- each tick renews the lease first and schedules nothing without it; a tick never sleeps
  past the next renewal;
- a task is sent only while the lease is valid by this process's own clock (a beat that
  was paused past its lease sends nothing, even before Redis tells it so);
- every send writes its entry's `last_run_at` to the database at once
  (`sync_every_tasks=1`), and a beat that becomes the holder re-reads the whole schedule
  from the database, so it starts from the previous holder's last runs, not its own.

Without Redis (embedded mode has no beat process anyway) it is a plain DatabaseScheduler.
`CELERY_BEAT_SCHEDULER` in settings names it; env `BEAT_LEASE=off` turns the lease off.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from django_celery_beat.schedulers import DatabaseScheduler

from .lease import DURATION, RENEW_EVERY, RETRY_EVERY, Lease, RedisLeaseStore

logger = logging.getLogger("realtime.beat")


def beat_lease() -> Lease | None:
    """The beat lease (in the publications' Redis), or None without Redis or when off."""
    from .gateway.conf import gateway_settings

    if os.environ.get("BEAT_LEASE", "auto").strip().lower() == "off":
        return None
    gateway = gateway_settings()
    if not gateway.history_redis_url:
        return None
    return Lease(RedisLeaseStore(gateway.history_redis_url), f"{gateway.key_prefix}:lease:beat", duration=DURATION)


class LeasedScheduler(DatabaseScheduler):  # type: ignore[misc]
    #: Seconds between lease attempts of a standby, and the longest sleep of the holder.
    retry_every = RETRY_EVERY
    renew_every = RENEW_EVERY

    def __init__(self, *args: Any, lease: Lease | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("sync_every_tasks", 1)
        self.lease = lease if lease is not None else beat_lease()
        self.leading = False
        self._store_failing = False
        super().__init__(*args, **kwargs)

    def _hold(self) -> bool:
        assert self.lease is not None
        try:
            held = self.lease.hold()
            if self._store_failing:
                logger.info("beat: lease store reachable again")
            self._store_failing = False
            return held
        except Exception as exc:
            if not self._store_failing:
                logger.error("beat: lease store unreachable (%s: %s)", type(exc).__name__, exc)
            self._store_failing = True
            return self.lease.valid()

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if self.lease is None:
            return float(super().tick(*args, **kwargs))
        if not self._hold():
            if self.leading:
                logger.warning("beat: lease %s lost; standing by", self.lease.key)
                self.leading = False
                self._dirty.clear()  # the new holder's last runs win, not ours
            return self.retry_every
        if not self.leading:
            self.leading = True
            logger.info("beat: active (lease %s, token %s); schedule re-read", self.lease.key, self.lease.token)
            self._dirty.clear()
            # The next `schedule` read comes whole from the database, as at start-up; the
            # change marker is taken first, so that read is not followed by a second one
            # within the same tick (which would leave the heap with entries whose
            # `last_run_at` predates this tick's sends).
            self._last_timestamp = self.Changes.last_change()
            self._initial_read = True
            self._heap_invalidated = False
            self._heap = None
        return float(min(super().tick(*args, **kwargs), self.renew_every))

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        if self.lease is not None and not self.lease.valid():
            logger.warning("beat: lease lapsed; %s not sent (the holder sends it)", entry.name)
            return
        super().apply_entry(entry, producer=producer)

    def close(self) -> None:
        super().close()
        if self.lease is not None:
            self.lease.release()
