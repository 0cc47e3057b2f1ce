"""Default beat entries of the prices app (installed by `manage.py setup_schedule`)."""

from __future__ import annotations

from realtime_project.scheduling import PeriodicSpec

from .conf import prices_settings

_conf = prices_settings()

PERIODIC_TASKS = [
    PeriodicSpec(
        name="prices: tick",
        task="prices.tasks.tick",
        every_seconds=_conf.tick_interval,
        description="Poll due sources, aggregate, publish changed prices in one batch",
    ),
    PeriodicSpec(
        name="prices: market overview",
        task="prices.tasks.market_overview",
        every_seconds=_conf.overview_interval,
        description="Global figures, top movers, recent trades to market:overview (on change)",
    ),
    PeriodicSpec(
        name="prices: prune history",
        task="prices.tasks.prune_history",
        every_seconds=_conf.prune_interval,
        description="Delete minute candles older than PRICES['HISTORY_RETENTION_DAYS']",
    ),
]
