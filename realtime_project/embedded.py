"""Embedded-mode companions: dev-only services apps run inside the server, next to the scheduler.

An app opts in with `<app>/embedded.py` defining `start() -> Companion | None` (None: not
wanted or not available). `manage.py serve` starts them before the embedded scheduler
and stops them, in reverse order, when the server exits (also on Ctrl-C). They are for
the offline `make run` only (e.g. the wallets app's local dev chain): a companion that
fails to start is logged and skipped, the server always comes up.
"""

from __future__ import annotations

import logging
from typing import Protocol

from realtime_project.discovery import app_submodules

logger = logging.getLogger("realtime.embedded")


class Companion(Protocol):
    def stop(self) -> None: ...


def start_companions() -> list[Companion]:
    """Start every app's companion; returns those running (stop them with `stop_companions`)."""
    started: list[Companion] = []
    try:
        for config, module in app_submodules("embedded"):
            try:
                companion = module.start()
            except Exception:
                logger.exception("embedded companion of %s failed to start; continuing without it", config.name)
                continue
            if companion is not None:
                started.append(companion)
    except BaseException:  # Ctrl-C while starting: stop what already runs
        stop_companions(started)
        raise
    return started


def stop_companions(companions: list[Companion]) -> None:
    for companion in reversed(companions):
        try:
            companion.stop()
        except Exception:
            logger.exception("embedded companion %r failed to stop", companion)
