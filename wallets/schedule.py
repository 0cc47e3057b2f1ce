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
]
