"""Periodic tasks: apps declare defaults; the schedule itself lives in the database.

Each app may define `PERIODIC_TASKS: list[PeriodicSpec]` in `<app>/schedule.py`.
`install_default_schedule()` (run by `manage.py setup_schedule`, which `make run` and
`make cluster` call after migrating) creates the missing django-celery-beat rows and
leaves existing ones alone, so what staff change in the admin sticks.

In production Celery beat reads those rows (DatabaseScheduler). In embedded mode
`EmbeddedScheduler` reads the same rows inside the server process and runs due tasks
in a worker thread, so the newcomer's `make run` needs no broker and no beat process.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.db import close_old_connections
from django.utils import timezone

from realtime_project.discovery import app_submodules

logger = logging.getLogger("realtime.scheduling")


@dataclass(frozen=True)
class PeriodicSpec:
    name: str
    task: str
    every_seconds: float
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    enabled: bool = True


def declared_specs() -> list[PeriodicSpec]:
    specs: list[PeriodicSpec] = []
    for _config, module in app_submodules("schedule"):
        specs.extend(getattr(module, "PERIODIC_TASKS", []))
    return specs


def install_default_schedule() -> list[str]:
    """Create missing periodic tasks; returns the names created."""
    import json

    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    created: list[str] = []
    for spec in declared_specs():
        if PeriodicTask.objects.filter(name=spec.name).exists():
            continue
        seconds = max(1, round(spec.every_seconds))
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.create(
            name=spec.name,
            task=spec.task,
            interval=interval,
            kwargs=json.dumps(spec.kwargs),
            description=spec.description,
            enabled=spec.enabled,
        )
        created.append(spec.name)
    return created


class EmbeddedScheduler:
    """Runs the database schedule in-process (embedded mode only).

    Each task runs in a worker thread; a task still running when it is due again is
    skipped (no overlap), as a single beat + worker would effectively do.
    """

    def __init__(self, tick: float = 1.0, workers: int = 4) -> None:
        self.tick = tick
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embedded-task")
        self._running: dict[str, Future[Any]] = {}
        self._unknown: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="embedded-scheduler", daemon=True)

    def start(self) -> None:
        from realtime_project.celery import app

        # Celery imports the apps' tasks modules when a worker boots; the server is no
        # worker, so trigger the same autodiscovery before resolving task names.
        app.loader.import_default_modules()
        self._thread.start()
        logger.info("embedded scheduler started (Celery beat schedule from the database)")

    def stop(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.run_due()
            except Exception:
                logger.exception("embedded scheduler tick failed")
            finally:
                close_old_connections()

    def run_due(self) -> list[str]:
        from django_celery_beat.models import PeriodicTask

        started: list[str] = []
        now = timezone.now()
        for entry in PeriodicTask.objects.filter(enabled=True).select_related(
            "interval", "crontab", "solar", "clocked"
        ):
            if entry.name.startswith("celery.") or (entry.expires and entry.expires <= now):
                continue
            if entry.task in self._unknown:
                continue
            running = self._running.get(entry.name)
            if running is not None and not running.done():
                continue
            last = entry.last_run_at or (entry.start_time or now) - _period(entry)
            due, _ = entry.schedule.is_due(last)
            if not due:
                continue
            if not self._registered(entry.task):
                continue
            PeriodicTask.objects.filter(pk=entry.pk).update(last_run_at=now, total_run_count=entry.total_run_count + 1)
            self._running[entry.name] = self._pool.submit(self._execute, entry.task, entry.args, entry.kwargs)
            started.append(entry.name)
            if entry.one_off:
                PeriodicTask.objects.filter(pk=entry.pk).update(enabled=False)
        return started

    def _registered(self, task_name: str) -> bool:
        from realtime_project.celery import app

        if task_name in app.tasks:
            return True
        self._unknown.add(task_name)  # reported once, not every tick
        logger.error("periodic task %r is not a registered Celery task; skipping it", task_name)
        return False

    @staticmethod
    def _execute(task_name: str, args_json: str, kwargs_json: str) -> None:
        import json

        from realtime_project.celery import app

        try:
            task = app.tasks[task_name]
            started = time.perf_counter()
            task.apply(args=json.loads(args_json or "[]"), kwargs=json.loads(kwargs_json or "{}"), throw=True)
            logger.debug("task %s took %.3fs", task_name, time.perf_counter() - started)
        except Exception:
            logger.exception("embedded task %s failed", task_name)
        finally:
            close_old_connections()


def _period(entry: Any) -> Any:
    from datetime import timedelta

    if entry.interval is not None:
        return timedelta(seconds=entry.interval.every * _SECONDS[entry.interval.period])
    return timedelta(0)


_SECONDS = {"microseconds": 1e-6, "seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
