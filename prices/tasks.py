"""Celery tasks of the prices app: thin wrappers over the services."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.core.cache import cache

from .activity import streams_active
from .conf import prices_settings
from .services.history import candles_prune
from .services.overview import market_overview_refresh
from .services.tick import prices_tick

logger = logging.getLogger("prices.tasks")

#: A tick that overlaps the previous one (slow sources) is skipped, not queued behind it.
TICK_LOCK = "prices:tick-lock"
TICK_LOCK_TTL = 30


@shared_task(name="prices.tasks.tick", ignore_result=True)
def tick() -> dict[str, Any] | None:
    """The REST tick: the whole price pipeline when no feed process streams, else nothing.

    A running feed process (`manage.py feeds`, or the server in embedded mode) polls
    REST itself where a stream is down, so one process aggregates and publishes.
    """
    if streams_active():
        return {"skipped": "streams"}
    if not cache.add(TICK_LOCK, 1, TICK_LOCK_TTL):
        logger.info("previous price tick still running: skipped")
        return None
    try:
        return prices_tick().summary()
    finally:
        cache.delete(TICK_LOCK)


@shared_task(name="prices.tasks.market_overview", ignore_result=True)
def market_overview() -> bool:
    # While a feed process streams, it publishes the overview; this keeps its global figures fresh.
    return market_overview_refresh(streams=streams_active()) is not None


@shared_task(name="prices.tasks.prune_history", ignore_result=True)
def prune_history() -> int:
    return candles_prune(retention_days=prices_settings().history_retention_days)
