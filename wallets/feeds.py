"""The wallets app's feeds (`manage.py feeds`): every enabled chain, scanned as heads arrive.

One feed, `wallets.chains`, runs a `ChainWatcher` (wallets/watcher.py) per enabled chain:
heads pushed over the chain's `ws_url` where it has one, HTTP polling otherwise and
while the socket is down. The chain rows are read again every `REFRESH` seconds: a chain
added, disabled or edited in the admin (URLs, poll interval) gets its watcher started,
stopped or restarted without restarting the process. A watcher that fails is restarted
after a full-jitter delay, alone.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import close_old_connections

from realtime_project.backoff import full_jitter
from realtime_project.clock import SYSTEM_CLOCK, Clock
from realtime_project.feeds import Feed

from .blocks import BlockListener
from .chaindata import Tx
from .conf import wallets_settings
from .feedstate import feed_forget, feed_mark
from .rpc import RpcError
from .scanning.pending import pending_seen, tracked_addresses
from .scanning.scanner import chain_scan
from .selectors import chain_get, enabled_chains
from .services.transactions import TransactionMonitor
from .watcher import PUSH_SAFETY_INTERVAL, ChainConfig, ChainWatcher, ScanOutcome, Work

logger = logging.getLogger("wallets.feeds")

#: Seconds between two reads of the chain rows (admin edits are picked up this fast).
REFRESH = 5.0
#: Restart delays of a failing watcher (full jitter).
RESTART_BASE, RESTART_CAP = 1.0, 60.0


class ChainWork(Work):
    """The sync side of a watcher, on the chain's own thread: scans, monitor, pending."""

    def __init__(self, config: ChainConfig, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self.clock = clock
        self.listener = BlockListener(max_log_range=wallets_settings().logs_range)
        self._tracked: set[str] = set()
        self._tracked_at = 0.0
        self._owner = secrets.token_hex(6)  # this watcher's feed marks

    def _chain(self) -> Any:
        return chain_get(chain_id=self.config.chain_id)

    def scan(self) -> ScanOutcome:
        close_old_connections()
        started = time.perf_counter()
        try:
            result = chain_scan(chain_id=self.config.chain_id, listener=self.listener)
            if result.error != "locked":
                try:
                    monitor = TransactionMonitor(listener=self.listener, clock=self.clock)
                    monitor.poll(self._chain())
                except RpcError as exc:
                    logger.warning("chain %s: transaction tracking failed: %s", self.config.chain_id, exc.code)
            return ScanOutcome(head=result.head, blocks=result.blocks, error=result.error,
                               seconds=time.perf_counter() - started)  # fmt: skip
        except Exception as exc:  # an unknown chain (deleted meanwhile), a database error
            logger.exception("chain %s: scan failed", self.config.chain_id)
            return ScanOutcome(head=None, error=type(exc).__name__, seconds=time.perf_counter() - started)
        finally:
            close_old_connections()

    def pending(self, items: list[Tx | str]) -> int:
        close_old_connections()
        try:
            chain = self._chain()
            now = self.clock.monotonic()
            if now - self._tracked_at > 2.0:  # links change rarely; re-read at most every 2 s
                self._tracked, self._tracked_at = tracked_addresses(chain=chain), now
            return len(pending_seen(chain=chain, items=items, listener=self.listener, tracked=self._tracked))
        finally:
            close_old_connections()

    def close(self) -> None:
        """The watcher stopped: forget its mark, so beat polls the chain again at once
        instead of when the mark expires (a feed process that dies still expires)."""
        try:
            feed_forget(chain_id=self.config.chain_id, owner=self._owner)
        except Exception:  # the cache is down: the mark expires by itself
            logger.warning("chain %s: could not clear the feed mark", self.config.chain_id, exc_info=True)
        finally:
            close_old_connections()

    def mark(self, mode: str, health: dict[str, Any]) -> None:
        interval = max(self.config.poll_interval, PUSH_SAFETY_INTERVAL if mode == "push" else 0.0)
        feed_mark(chain_id=self.config.chain_id, mode=mode, interval=interval, health=health, owner=self._owner)


def load_configs() -> list[ChainConfig]:
    close_old_connections()
    try:
        return [
            ChainConfig(
                chain_id=c.chain_id,
                name=c.name,
                rpc_url=c.rpc_url,
                ws_url=c.ws_url,
                poll_interval=max(0.05, float(c.poll_interval)),
            )
            for c in enabled_chains().order_by("chain_id")
        ]
    finally:
        close_old_connections()


class ChainsFeed:
    """Feed `wallets.chains`: one supervised watcher per enabled chain."""

    name = "wallets.chains"

    def __init__(
        self,
        *,
        refresh: float = REFRESH,
        clock: Clock = SYSTEM_CLOCK,
        loader: Callable[[], list[ChainConfig]] = load_configs,
        work_factory: Callable[[ChainConfig], Work] = ChainWork,
        watcher_factory: Callable[..., ChainWatcher] = ChainWatcher,
        rng: random.Random | None = None,
    ) -> None:
        self.refresh = refresh
        self.clock = clock
        self.loader = loader
        self.work_factory = work_factory
        self.watcher_factory = watcher_factory
        self.rng = rng or random.Random()
        self._running: dict[int, tuple[ChainConfig, asyncio.Task[None]]] = {}
        self._watchers: dict[int, ChainWatcher] = {}
        self._restarts: dict[int, int] = {}
        self._errors: dict[int, str] = {}

    async def run(self) -> None:
        loader = ThreadPoolExecutor(1, thread_name_prefix="wallets-chains")
        try:
            while True:
                configs = await asyncio.get_running_loop().run_in_executor(loader, self.loader)
                self._reconcile(configs)
                await self.clock.sleep(self.refresh)
        finally:
            tasks = [task for _, task in self._running.values()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._running.clear()
            self._watchers.clear()
            loader.shutdown(wait=False)

    def _reconcile(self, configs: list[ChainConfig]) -> None:
        wanted = {c.chain_id: c for c in configs}
        for chain_id, (config, task) in list(self._running.items()):
            if wanted.get(chain_id) != config:
                logger.info("chain %s: watcher %s", chain_id, "stopped" if chain_id not in wanted else "restarted")
                task.cancel()
                del self._running[chain_id]
                self._watchers.pop(chain_id, None)
        for chain_id, config in wanted.items():
            if chain_id not in self._running:
                task = asyncio.create_task(self._supervise(config), name=f"wallets-chain:{chain_id}")
                self._running[chain_id] = (config, task)

    async def _supervise(self, config: ChainConfig) -> None:
        streak = 0
        while True:
            watcher = self.watcher_factory(config, self.work_factory(config), clock=self.clock)
            self._watchers[config.chain_id] = watcher
            began = self.clock.monotonic()
            try:
                await watcher.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._errors[config.chain_id] = f"{type(exc).__name__}: {str(exc)[:200]}"
                logger.exception("chain %s: watcher failed; restarting", config.chain_id)
            if self.clock.monotonic() - began > 60:
                streak = 0
            self._restarts[config.chain_id] = self._restarts.get(config.chain_id, 0) + 1
            await self.clock.sleep(full_jitter(streak, base=RESTART_BASE, cap=RESTART_CAP, rng=self.rng))
            streak += 1

    def health(self) -> dict[str, Any]:
        chains: dict[str, Any] = {}
        for chain_id, watcher in sorted(self._watchers.items()):
            report = watcher.health()
            report["restarts"] = self._restarts.get(chain_id, 0)
            if chain_id in self._errors:
                report["watcher_error"] = self._errors[chain_id]
            chains[str(chain_id)] = report
        return {"ok": all(c.get("ok", False) for c in chains.values()), "chains": chains}


def feeds() -> list[Feed]:
    return [ChainsFeed()]
