"""One chain in the feed process: a scan per pushed head, HTTP polling while the socket is down.

The async side (`ChainWatcher`) only decides *when* to scan: at once on each `newHeads`
notification, right after every (re)connect (the backfill from the persisted cursor),
every `poll_interval` while the chain has no WebSocket URL or its socket is down, and on
a slow safety tick while it is up. The work itself (`ChainWork`: the reorg-safe
`chain_scan`, then the transaction monitor; pending transactions) is the same sync code
the Celery tasks run, on a thread of the chain's own, so one chain's slow node never
delays another's heads. Heads that arrive during a scan coalesce into the next one
(sub-second chains are scanned in small batches, never limited by beat's 1 s tick).

A head the HTTP node does not serve yet (a load-balanced provider behind its WebSocket)
is retried after 50 ms, 100 ms, … up to the poll interval, then left to the next head.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from realtime_project.clock import SYSTEM_CLOCK, Clock

from .chaindata import Tx
from .heads import Head, HeadStream, StreamEvents

logger = logging.getLogger("wallets.watcher")

T = TypeVar("T")

#: First delay before scanning again when the HTTP node is behind the pushed head.
LAG_RETRY_FIRST = 0.05
#: Retries of one lagging head before waiting for the next head or poll.
LAG_RETRIES = 8
#: While heads are pushed, a scan still runs this often (confirmations of quiet chains,
#: dropped transactions), and never less often than the poll interval.
PUSH_SAFETY_INTERVAL = 10.0
#: Pending transactions queued for the chain's thread at most (a flood drops the oldest
#: hint, never a transaction: what is missed is found at inclusion).
PENDING_QUEUE = 10_000


@dataclass(frozen=True)
class ChainConfig:
    """What a watcher needs of a `Chain` row; a change restarts the watcher."""

    chain_id: int
    name: str
    rpc_url: str
    ws_url: str
    poll_interval: float


@dataclass
class ScanOutcome:
    head: int | None
    blocks: int = 0
    error: str = ""
    seconds: float = 0.0


class Work:
    """The sync side of a watcher (see `ChainWork`); tests give a fake."""

    def scan(self) -> ScanOutcome:
        raise NotImplementedError

    def pending(self, items: list[Tx | str]) -> int:
        raise NotImplementedError

    def mark(self, mode: str, health: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Called once, on the watcher's way out, after its last scan (off the event loop)."""


@dataclass
class _Stats:
    scans: int = 0
    scan_errors: int = 0
    last_error: str = ""
    last_scan_seconds: float | None = None
    lag_retries: int = 0
    pending_tracked: int = 0
    pending_dropped_hints: int = 0
    triggers: dict[str, int] = field(default_factory=dict)


class ChainWatcher(StreamEvents):
    """Scans one chain when it should be scanned (see the module docstring)."""

    def __init__(
        self,
        config: ChainConfig,
        work: Work,
        *,
        clock: Clock = SYSTEM_CLOCK,
        stream_factory: Callable[..., HeadStream] = HeadStream,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.config = config
        self.work = work
        self.clock = clock
        self.stream: HeadStream | None = None
        if config.ws_url:
            self.stream = stream_factory(config.ws_url, chain_id=config.chain_id, events=self, clock=clock)
        self._executor = executor or ThreadPoolExecutor(1, thread_name_prefix=f"wallets-{config.chain_id}")
        self._pending_executor = ThreadPoolExecutor(1, thread_name_prefix=f"wallets-{config.chain_id}-pending")
        self._wake = asyncio.Event()
        self._mode_changed = asyncio.Event()
        self._pending: asyncio.Queue[Tx | str] = asyncio.Queue(PENDING_QUEUE)
        self._pushed: int | None = None  # the highest pushed head not scanned yet
        self._lag_attempts = 0
        self._retry: asyncio.Task[None] | None = None
        self._scanning = False
        self.stats = _Stats()
        self.last_outcome: ScanOutcome | None = None

    # --- mode --------------------------------------------------------------------------

    @property
    def pushed(self) -> bool:
        return self.stream is not None and self.stream.connected

    @property
    def busy(self) -> bool:
        """A scan is running or asked for."""
        return self._scanning or self._wake.is_set()

    @property
    def mode(self) -> str:
        return "push" if self.pushed else "poll"

    # --- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(self._scan_loop(), name=f"wallets-scan:{self.config.chain_id}"),
            asyncio.create_task(self._poll_loop(), name=f"wallets-poll:{self.config.chain_id}"),
            asyncio.create_task(self._pending_loop(), name=f"wallets-pending:{self.config.chain_id}"),
        ]
        if self.stream is not None:
            tasks.append(asyncio.create_task(self.stream.run(), name=f"wallets-stream:{self.config.chain_id}"))
        self.request("start")
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
            raise RuntimeError("a chain watcher task ended")
        finally:
            for task in tasks:
                task.cancel()
            if self._retry is not None:
                self._retry.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._stop_threads()

    async def _stop_threads(self) -> None:
        """A clean stop: a scan still running finishes on its thread (it commits or rolls
        back whole; the feed runner's stop timeout bounds the wait), queued work is
        dropped, then `work.close()` tells beat at once that this chain is its own again."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._pending_executor.shutdown(wait=False, cancel_futures=True)

        def join_and_close() -> None:
            self._executor.shutdown(wait=True)
            self._pending_executor.shutdown(wait=True)
            self.work.close()

        try:
            await asyncio.shield(asyncio.get_running_loop().run_in_executor(None, join_and_close))
        except asyncio.CancelledError:  # stopped harder: the thread still finishes and closes
            logger.warning("chain %s: stopped before its last scan finished", self.config.chain_id)
            raise

    def request(self, why: str) -> None:
        """Scan as soon as the current scan (if any) is done."""
        self.stats.triggers[why] = self.stats.triggers.get(why, 0) + 1
        self._wake.set()

    async def _in_thread(self, executor: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    async def _scan_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            target = self._pushed
            self._scanning = True
            try:
                outcome = await self._in_thread(self._executor, self.work.scan)
            finally:
                self._scanning = False
            self.last_outcome = outcome
            self.stats.scans += 1
            self.stats.last_scan_seconds = outcome.seconds
            if outcome.error and outcome.error != "locked":
                self.stats.scan_errors += 1
                self.stats.last_error = outcome.error
            await self._in_thread(self._executor, self.work.mark, self.mode, self.health())
            self._after_scan(target, outcome)

    def _after_scan(self, target: int | None, outcome: ScanOutcome) -> None:
        if target is None or outcome.head is None or outcome.head >= target:
            self._lag_attempts = 0
            if target is not None and self._pushed == target:
                self._pushed = None
            return
        # The HTTP node is behind the pushed head: try again shortly, a few times.
        if self._lag_attempts >= LAG_RETRIES or self._wake.is_set():
            return
        delay = min(self.config.poll_interval, LAG_RETRY_FIRST * 2**self._lag_attempts)
        self._lag_attempts += 1
        self.stats.lag_retries += 1
        if self._retry is None or self._retry.done():
            self._retry = asyncio.create_task(self._retry_after(delay))

    async def _retry_after(self, delay: float) -> None:
        await self.clock.sleep(delay)
        self.request("lagging_http_node")

    async def _poll_loop(self) -> None:
        while True:
            interval = self.config.poll_interval
            if self.pushed:
                interval = max(interval, PUSH_SAFETY_INTERVAL)
            self._mode_changed.clear()
            sleeper = asyncio.ensure_future(self.clock.sleep(interval))
            changed = asyncio.ensure_future(self._mode_changed.wait())
            try:
                await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                changed.cancel()
            if sleeper.done() and not sleeper.cancelled():
                self.request("safety" if self.pushed else "poll")
            # else: the socket went up or down; start over with the new interval

    async def _pending_loop(self) -> None:
        while True:
            items = [await self._pending.get()]
            while not self._pending.empty() and len(items) < 500:
                items.append(self._pending.get_nowait())
            try:
                self.stats.pending_tracked += await self._in_thread(self._pending_executor, self.work.pending, items)
            except Exception:  # one bad batch must not stop pending detection
                logger.exception("chain %s: pending transactions failed", self.config.chain_id)

    # --- stream events -------------------------------------------------------------------

    async def connected(self, *, pending: bool) -> None:
        logger.info("chain %s: heads pushed from %s", self.config.chain_id, self.config.ws_url)
        self._mode_changed.set()
        self.request("connected")  # backfill from the cursor: what happened while down

    async def disconnected(self, reason: str) -> None:
        logger.warning("chain %s: socket down (%s); polling every %gs", self.config.chain_id, reason,
                       self.config.poll_interval)  # fmt: skip
        self._mode_changed.set()
        self.request("disconnected")

    async def head(self, head: Head) -> None:
        if self._pushed is None or head.number > self._pushed:
            self._pushed = head.number
        self._lag_attempts = 0
        self.request("head")

    async def pending(self, items: list[Tx | str]) -> None:
        for item in items:
            if self._pending.full():
                self._pending.get_nowait()
                self.stats.pending_dropped_hints += 1
            self._pending.put_nowait(item)

    # --- health --------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        last = self.last_outcome
        ok = last is None or not last.error or last.error == "locked"
        if self.stream is not None and not self.stream.connected:
            ok = False
        report: dict[str, Any] = {
            "ok": ok,
            "mode": self.mode,
            "ws": bool(self.config.ws_url),
            "scans": self.stats.scans,
            "scan_errors": self.stats.scan_errors,
            "last_error": self.stats.last_error or None,
            "last_scan_seconds": self.stats.last_scan_seconds,
            "head": last.head if last else None,
            "lag_retries": self.stats.lag_retries,
            "pending_tracked": self.stats.pending_tracked,
            "pending_dropped_hints": self.stats.pending_dropped_hints,
            "triggers": dict(self.stats.triggers),
        }
        if self.stream is not None:
            report["stream"] = self.stream.health()
        return report
