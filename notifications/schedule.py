"""Periodic tasks of the notifications app (installed by `manage.py setup_schedule`)."""

from realtime_project.scheduling import PeriodicSpec

PERIODIC_TASKS = [
    PeriodicSpec(
        name="notifications.publish_due_announcements",
        task="notifications.tasks.publish_due_announcements",
        every_seconds=30,
        description="Safety net: publish announcements whose ETA task was lost or is stale.",
    ),
    PeriodicSpec(
        name="notifications.flush_digests",
        task="notifications.tasks.flush_digests",
        every_seconds=10,
        description="Safety net: deliver low-priority digest windows that have closed.",
    ),
    PeriodicSpec(
        name="notifications.purge_batched_items",
        task="notifications.tasks.purge_batched_items",
        every_seconds=24 * 3600,
        description="Forget delivered digest members after the retention period.",
    ),
    PeriodicSpec(
        name="notifications.push_due",
        task="notifications.tasks.push_due",
        every_seconds=15,
        description="Web Push retries (backoff, Retry-After) and pushes whose task message was lost.",
    ),
    PeriodicSpec(
        name="notifications.email_due",
        task="notifications.tasks.email_due",
        every_seconds=15,
        description="Emails of urgent/high notifications whose grace period is over; email retries.",
    ),
    PeriodicSpec(
        name="notifications.email_digests",
        task="notifications.tasks.email_digests",
        every_seconds=900,
        description="The optional daily email digest, at each user's local digest hour.",
    ),
]
