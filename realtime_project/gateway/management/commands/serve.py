"""`manage.py serve`: run the gateway (uvicorn by default, or daphne), plus the embedded
scheduler, the feed runner and the apps' embedded companions (e.g. the local dev chain)
when there is no Redis (embedded mode)."""

from __future__ import annotations

import os
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand


def server_module_default() -> str:
    from realtime_project.server import DEFAULT_APP

    return DEFAULT_APP


class Command(BaseCommand):
    help = "Run the ASGI server with the WebSocket gateway (drains on SIGTERM)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--server", choices=["uvicorn", "daphne"], default=os.environ.get("SERVER", "uvicorn"))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-compression", action="store_true", help="do not negotiate permessage-deflate")
        parser.add_argument("--app", default=os.environ.get("ASGI_APP", server_module_default()), help="ASGI app path")
        parser.add_argument(
            "--scheduler",
            choices=["auto", "on", "off"],
            default=os.environ.get("EMBEDDED_SCHEDULER", "auto"),
            help="run the beat schedule in-process (auto: only in embedded mode)",
        )
        parser.add_argument(
            "--feeds",
            choices=["auto", "on", "off"],
            default=os.environ.get("EMBEDDED_FEEDS", "auto"),
            help="run the apps' feeds (streams) in-process, as `manage.py feeds` does (auto: only in embedded mode)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from realtime_project import server
        from realtime_project.embedded import Companion, start_companions, stop_companions
        from realtime_project.feeds import FeedThread
        from realtime_project.scheduling import EmbeddedScheduler

        # uvicorn re-raises the SIGTERM it handled once it has drained; with the default
        # action the process would die there, skipping the clean-up below (the feeds'
        # sockets, the scheduler, the companions). Exit normally instead.
        signal.signal(signal.SIGTERM, _exit_cleanly)
        embedded = options["scheduler"] == "on" or (options["scheduler"] == "auto" and settings.EMBEDDED)
        with_feeds = options["feeds"] == "on" or (options["feeds"] == "auto" and settings.EMBEDDED)
        scheduler = None
        feeds: FeedThread | None = None
        companions: list[Companion] = []
        try:
            if embedded:
                # Companions first: the dev chain registers its chain before the first scan.
                companions = start_companions()
                scheduler = EmbeddedScheduler()
                scheduler.start()
            if with_feeds:
                feeds = start_embedded_feeds()
            mode = "embedded (SQLite/in-memory unless configured)" if settings.EMBEDDED else "production (Redis)"
            address = f"http://{options['host']}:{options['port']}/"
            self.stdout.write(f"Serving on {address} with {options['server']}, {mode}")
            if options["server"] == "daphne":
                server.run_daphne(
                    options["host"], options["port"], compression=not options["no_compression"], app=options["app"]
                )
            else:
                server.run_uvicorn(
                    options["host"], options["port"], compression=not options["no_compression"], app=options["app"]
                )
        except KeyboardInterrupt:
            # Ctrl-C: uvicorn drains, then re-raises the signal it caught; end quietly
            # (the finally below still stops the scheduler and the companions).
            pass
        finally:
            if feeds is not None:
                feeds.stop()
            if scheduler is not None:
                scheduler.stop()
            stop_companions(companions)


def _exit_cleanly(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def start_embedded_feeds() -> Any:
    """The feed runner on a thread of this process, started once the server loop exists.

    With the in-memory channel layer, publications must reach the server loop's layer:
    the runner waits for it (the hub starts before the server listens).
    """
    from realtime_project.feeds import FeedThread, default_store, discover_feeds
    from realtime_project.gateway.runtime import server_loop, uses_memory_layer

    def ready() -> bool:
        return not uses_memory_layer() or server_loop() is not None

    return FeedThread(discover_feeds(), store=default_store(), ready=ready).start()
