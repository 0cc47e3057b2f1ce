"""`manage.py feeds`: run every app's long-lived feeds (exchange streams, chain heads)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Run the apps' feeds (<app>/feeds.py) in one asyncio loop, restarting a failed feed with "
        "full-jitter backoff, until SIGTERM/SIGINT. Run one active instance per deployment."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--only", default="", help="comma-separated feed names to run (default: all)")
        parser.add_argument("--list", action="store_true", help="print the declared feeds and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        from realtime_project.feeds import discover_feeds, run_process
        from realtime_project.server import tune_gc

        only = [name.strip() for name in options["only"].split(",") if name.strip()]
        try:
            feeds = discover_feeds(only=only)
        except (ValueError, ImportError) as exc:
            raise CommandError(str(exc)) from exc
        if options["list"]:
            for feed in feeds:
                self.stdout.write(feed.name)
            return
        if not feeds:
            self.stderr.write("no app declares a feed: nothing to run (the process stays up, idle)")
        self.stdout.write(f"Running feeds: {', '.join(f.name for f in feeds) or '(none)'}")
        tune_gc()
        run_process(feeds)
        self.stdout.write("Feeds stopped.")
