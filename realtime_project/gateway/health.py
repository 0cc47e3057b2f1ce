"""Readiness checks: the database, the channel layer, and checks apps register.

An app registers `register_check("prices", fn)` where `fn()` (sync, may use the ORM)
returns a dict with at least `{"ok": bool}`; it is reported under `apps` in /readyz.
A failing app check is reported but does not make the gateway unready unless it was
registered with `critical=True`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connection

from .conf import gateway_settings
from .runtime import current_hub, get_history

logger = logging.getLogger("realtime.health")

CheckFn = Callable[[], dict[str, Any]]
_checks: dict[str, tuple[CheckFn, bool]] = {}
#: Readiness probes must answer fast: each dependency gets this long.
CHECK_TIMEOUT = 2.0


def register_check(name: str, fn: CheckFn, *, critical: bool = False) -> None:
    _checks[name] = (fn, critical)


def _drop_broken_connection() -> None:
    """Checks run in worker threads outside the request cycle, where Django never closes a
    broken connection: after PostgreSQL restarts, the thread's old connection would fail
    every later check (the gateway unready for ever). Close it; the next query reconnects."""
    if connection.connection is not None and connection.errors_occurred and not connection.is_usable():
        with contextlib.suppress(Exception):
            connection.close()


def _database() -> dict[str, Any]:
    _drop_broken_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "vendor": connection.vendor}


def _apps() -> dict[str, dict[str, Any]]:
    _drop_broken_connection()
    out: dict[str, dict[str, Any]] = {}
    for name, (fn, critical) in _checks.items():
        try:
            result = dict(fn())
        except Exception as exc:
            logger.warning("readiness check %s failed: %s", name, exc)
            result = {"ok": False, "error": type(exc).__name__}
        result["critical"] = critical
        out[name] = result
    return out


async def _timed(coro: Any) -> dict[str, Any]:
    try:
        return dict(await asyncio.wait_for(coro, CHECK_TIMEOUT))
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}


async def _layer() -> dict[str, Any]:
    settings = gateway_settings()
    if not settings.history_redis_url:
        return {"ok": True, "backend": "memory"}
    ok = await get_history().ping()
    hub = current_hub()
    if hub is not None and not hub.layer_ok:
        return {"ok": False, "backend": "redis", "error": "hub cannot receive from the layer"}
    return {"ok": ok, "backend": "redis"}


async def readiness() -> tuple[bool, dict[str, Any]]:
    database = await _timed(sync_to_async(_database, thread_sensitive=False)())
    layer = await _timed(_layer())
    apps = await sync_to_async(_apps, thread_sensitive=False)()
    hub = current_hub()
    stats = hub.stats() if hub is not None else {"connections": 0, "users": 0, "channels": 0}
    presence = await _timed(_presence())
    ready = bool(
        database.get("ok")
        and layer.get("ok")
        and not stats.get("draining")
        and all(a.get("ok") for a in apps.values() if a.get("critical"))
    )
    return ready, {
        "status": "ready" if ready else "not_ready",
        "gateway": gateway_settings().gateway_id,
        "database": database,
        "channel_layer": layer,
        "connections": stats,
        "cluster": presence,
        "apps": apps,
    }


async def _presence() -> dict[str, Any]:
    from .presence import cluster_totals

    return {"ok": True, **await cluster_totals()}
