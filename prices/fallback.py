"""REST polls inside the feed process: the streams' safety net and their reconciliation.

- a source without a stream (CoinGecko) is polled at its `poll_interval`, as always;
- a streamed venue is polled over REST **only while its stream is not live** (down,
  stalled, still subscribing), at its `poll_interval`; its quotes count as usual;
- while its stream is live, a venue is polled only every `RECONCILE_INTERVAL`: those
  quotes are not aggregated, they are compared with the stream's, and a difference
  beyond `OUTLIER_BOUND` is flagged in the source's health (`reconciliation`).

Polls run on the prices polling threads (the adapters are blocking HTTP); a failing
source backs off exactly as in the REST tick (`backoff_seconds`, honouring Retry-After).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from realtime_project.clock import SYSTEM_CLOCK, Clock

from .backoff import backoff_seconds
from .conf import PricesSettings
from .live import LivePrices
from .services.tick import Poll, poll_source
from .sources.base import PriceSource
from .threads import thread_pool

logger = logging.getLogger("prices.fallback")

#: How often the poller looks at what is due.
CHECK_INTERVAL = 0.5


@dataclass
class PolledSource:
    """One source the poller looks after, with its REST adapter and state."""

    slug: str
    adapter: PriceSource
    ids: dict[str, str]
    interval: float
    #: Its stream's liveness (None: a REST-only source).
    streaming: Callable[[], bool] | None = None
    next_at: float = 0.0
    reconcile_at: float = 0.0
    failures: int = 0
    backoff_until: float = 0.0
    mode: str = "rest"
    polls: int = 0
    in_flight: bool = False
    last_error: str = ""
    reconciliation: dict[str, Any] = field(default_factory=dict)


class RestPoller:
    def __init__(
        self,
        *,
        live: LivePrices,
        sources: list[PolledSource],
        conf: PricesSettings,
        record: Callable[[PolledSource, Poll, int], None],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.live = live
        self.sources = sources
        self.conf = conf
        #: Writes a poll's outcome to source health (called on the database thread).
        self.record = record
        self.clock = clock

    async def run(self) -> None:
        clock = self.clock
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                now = clock.monotonic()
                for source in self.sources:
                    mode = self._mode(source)  # shown in health even while backing off
                    if mode != source.mode:
                        logger.info("%s: %s → %s", source.slug, source.mode, mode)
                        source.mode = mode
                        if mode == "fallback":
                            source.next_at = now  # the stream just went down: poll at once
                    if source.in_flight or now < source.backoff_until:
                        continue
                    if mode == "reconcile":
                        if now < source.reconcile_at:
                            continue
                    elif now < source.next_at:
                        continue
                    source.in_flight = True
                    task = asyncio.create_task(self._poll(source, mode), name=f"poll:{source.slug}")
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                await clock.sleep(CHECK_INTERVAL)
        finally:
            for task in tasks:
                task.cancel()

    def _mode(self, source: PolledSource) -> str:
        if source.streaming is None:
            return "rest"
        return "reconcile" if source.streaming() else "fallback"

    async def _poll(self, source: PolledSource, mode: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            poll = await loop.run_in_executor(thread_pool("prices-poll", 8), poll_source, source.adapter, source.ids)
            now = self.clock.monotonic()
            source.polls += 1
            accepted = 0
            if poll.result is not None:
                if mode == "reconcile":
                    self._reconcile(source, poll)
                else:
                    rejected = self.live.on_quotes(source.slug, poll.result.quotes)
                    accepted = len(poll.result.quotes) - rejected.total()
            if poll.error is None:
                source.failures, source.last_error = 0, ""
            else:
                source.failures += 1
                source.last_error = poll.error.code
                source.backoff_until = now + backoff_seconds(
                    source.failures,
                    base=self.conf.backoff_base,
                    cap=self.conf.backoff_max,
                    retry_after=poll.error.retry_after,
                    permanent=self.conf.permanent_backoff if poll.error.permanent else None,
                )
                logger.warning("%s (%s poll) failed: %s", source.slug, mode, poll.error.code)
            source.next_at = now + source.interval
            if mode == "reconcile":
                source.reconcile_at = now + self.conf.reconcile_interval
            await loop.run_in_executor(self.live.db, self.record, source, poll, accepted)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s: polling failed", source.slug)
        finally:
            source.in_flight = False

    def _reconcile(self, source: PolledSource, poll: Poll) -> None:
        """Compare the REST quotes with the stream's current ones (not aggregated)."""
        assert poll.result is not None
        bound = self.conf.outlier_bound
        checked = 0
        disagreements: list[dict[str, Any]] = []
        for quote in poll.result.quotes:
            current = self.live.aggregator.quote_of(quote.symbol, source.slug)
            if current is None or not quote.price > 0:
                continue
            checked += 1
            deviation = abs(quote.price - current) / current
            if deviation > bound:
                disagreements.append(
                    {"symbol": quote.symbol, "stream": current, "rest": quote.price, "deviation": round(deviation, 5)}
                )
        total = int(source.reconciliation.get("total_disagreements", 0)) + len(disagreements)
        source.reconciliation = {
            "at": self.clock.time(),
            "checked": checked,
            "disagreements": disagreements[:20],
            "total_disagreements": total,
            "ok": not disagreements,
        }
        if disagreements:
            logger.warning(
                "%s: stream and REST disagree beyond %.1f%% on %s",
                source.slug,
                bound * 100,
                ", ".join(d["symbol"] for d in disagreements[:10]),
            )

    def health(self) -> dict[str, Any]:
        return {
            s.slug: {
                "mode": s.mode,
                "polls": s.polls,
                "failures": s.failures,
                "last_error": s.last_error or None,
                "reconciliation": s.reconciliation or None,
            }
            for s in self.sources
        }
