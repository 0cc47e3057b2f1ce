#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import signal
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")
    if sys.argv[1:2] == ["serve"]:
        os.environ.setdefault("DB_POOL", "1")  # the gateway pools its database connections (settings.py)
    if sys.argv[1:2] in (["serve"], ["feeds"]):
        # A supervised long-lived process may be told to stop (SIGTERM) while Django is still
        # loading, before it installs its own graceful handler: that is a clean stop too
        # (exit status 0), not a death by signal. The command's handler replaces this one.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
