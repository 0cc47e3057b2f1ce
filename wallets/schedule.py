"""Periodic tasks of the wallets app (installed into django-celery-beat by `setup_schedule`)."""

from realtime_project.scheduling import PeriodicSpec

PERIODIC_TASKS = [
    PeriodicSpec(
        name="wallets: scan due chains",
        task="wallets.tasks.scan_due_chains",
        # Each chain has its own poll interval; this tick only decides which are due.
        every_seconds=1,
        description="Enqueue a scan (blocks, token events, confirmations) for each enabled chain that is due.",
    ),
    PeriodicSpec(
        name="wallets: run wallet backfills",
        task="wallets.tasks.run_backfills",
        every_seconds=5,
        description="Start (or resume after a restart) the history backfill of newly linked wallets, per chain.",
    ),
    PeriodicSpec(
        name="wallets: prune sign-in challenges",
        task="wallets.tasks.prune_challenges",
        every_seconds=3600,
        description="Delete SIWE challenges expired or used over a day ago, and skip records over 30 days old.",
    ),
]
