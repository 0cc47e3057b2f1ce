"""Today's REST path for bench/prices_streams.py: the price tick every TICK_INTERVAL, in one
process, as the beat task `prices.tasks.tick` runs it on its worker (no Celery dispatch)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")

import django  # noqa: E402

django.setup()

from prices.conf import prices_settings  # noqa: E402
from prices.services.tick import prices_tick  # noqa: E402


def main() -> None:
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    interval = prices_settings().tick_interval
    next_at = time.monotonic()
    while not stop:
        prices_tick()
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))


if __name__ == "__main__":
    main()
