"""The gateway's feed (run by the active feed process): the outbox flusher (`outbox.py`)."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import close_old_connections

from . import outbox

logger = logging.getLogger("realtime.feeds")

#: Seconds between two flushes when nothing more is due.
INTERVAL = 1.0


class OutboxFeed:
    """Sends the durable publications nobody confirmed (Redis was down, a process died)."""

    name = "gateway.outbox"

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.sent = 0
        self.rounds = 0
        self.last_error = ""
        self.last_round_at: float | None = None

    def _flush(self) -> outbox.FlushResult:
        try:
            return outbox.flush()
        finally:
            close_old_connections()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        try:
            while True:
                try:
                    result = await loop.run_in_executor(executor, self._flush)
                except Exception as exc:  # the database is down: try again next round
                    logger.warning("outbox: flush failed: %s: %s", type(exc).__name__, exc)
                    self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                    await asyncio.sleep(self.interval)
                    continue
                self.rounds += 1
                self.sent += result.sent
                self.last_error = result.error
                self.last_round_at = time.time()
                more = result.claimed >= outbox.FLUSH_LIMIT and not result.error
                await asyncio.sleep(0 if more else self.interval)
        finally:
            executor.shutdown(wait=False)

    def health(self) -> dict[str, Any]:
        return {
            "ok": not self.last_error,
            "sent": self.sent,
            "rounds": self.rounds,
            "last_error": self.last_error or None,
        }


def feeds() -> list[Any]:
    return [OutboxFeed()]
