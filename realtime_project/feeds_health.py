"""Where the feed runner's health goes: a cache entry read by /readyz and the admin.

The runner lives in another process (`manage.py feeds`) than the gateways that answer
/readyz, so it writes a snapshot every `FEEDS["HEALTH_INTERVAL"]` seconds to the
Django cache (Redis in production; in embedded mode the runner is in the server
process and the local-memory cache is enough). The entry expires on its own when the
process dies; a reader also judges it by its age.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache

KEY = "realtime:feeds:health"
#: The entry outlives this many missed writes before it expires by itself.
EXPIRY_INTERVALS = 5
#: A snapshot older than this many intervals means the process is gone or stuck.
STALE_INTERVALS = 3.0
#: Slack on top, for a loaded machine.
STALE_SLACK = 5.0


class CacheHealthStore:
    """The runner's snapshot in the Django cache, under one key (one active runner)."""

    def __init__(self, key: str = KEY) -> None:
        self.key = key

    def write(self, snapshot: dict[str, Any]) -> None:
        timeout = max(30.0, EXPIRY_INTERVALS * float(snapshot.get("interval") or 2.0))
        cache.set(self.key, snapshot, timeout)

    def clear(self, instance: str) -> None:
        current = cache.get(self.key)
        if current is None or current.get("instance") == instance:
            cache.delete(self.key)

    def read(self) -> dict[str, Any] | None:
        value = cache.get(self.key)
        return value if isinstance(value, dict) else None


def feeds_report(*, now: float | None = None, store: CacheHealthStore | None = None) -> dict[str, Any]:
    """The `feeds` entry of /readyz and the admin page.

    `{"ok", "running", "instance", "age", "feeds": {name: {ok, state, starts, restarts,
    failures, last_error, …, "health": <the feed's own health()>}}}`; `running` is false
    when no runner reported recently (none started, stopped, or dead).
    """
    now = time.time() if now is None else now
    snapshot = (store or CacheHealthStore()).read()
    if snapshot is None:
        return {"ok": False, "running": False, "feeds": {}, "detail": "no feed runner has reported"}
    age = max(0.0, now - float(snapshot.get("updated_at") or 0.0))
    interval = float(snapshot.get("interval") or 2.0)
    fresh = age <= STALE_INTERVALS * interval + STALE_SLACK
    report: dict[str, Any] = {
        "ok": bool(fresh and snapshot.get("ok")),
        "running": fresh and bool(snapshot.get("active")),
        "instance": snapshot.get("instance"),
        "age": round(age, 1),
        "feeds": snapshot.get("feeds") or {},
    }
    if not fresh:
        report["detail"] = f"last report {age:.0f}s ago: the feed process is stuck or gone"
    return report
