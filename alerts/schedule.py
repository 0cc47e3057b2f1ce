"""Periodic tasks of the alerts app (installed by `manage.py setup_schedule`)."""

from realtime_project.scheduling import PeriodicSpec

PERIODIC_TASKS = [
    PeriodicSpec(
        name="alerts.purge_deleted_rules",
        task="alerts.tasks.purge_deleted_rules",
        every_seconds=6 * 3600,
        description="Drop soft-deleted alert rules older than a day.",
    ),
]
