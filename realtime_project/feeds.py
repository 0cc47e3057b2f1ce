"""The feed process: every app's long-lived feeds, supervised in one asyncio loop.

An app declares its feeds in `<app>/feeds.py`:

    def feeds() -> list[Feed]: ...

A `Feed` has a `name`, an `async def run()` that runs until cancelled, and a
`def health() -> dict` (JSON-able; `ok: bool` when the feed can tell). `FeedRunner`
runs them all: a feed whose `run()` raises (or returns) is logged, counted and started
again after a full-jitter backoff; a feed that ran for `STABLE_AFTER` seconds before
failing starts over from the shortest delay. Health is written every `HEALTH_INTERVAL`
to a store other processes read (`feeds_health.py`: /readyz, the admin).

Where it runs: `python manage.py feeds` (programs `feeds`, `feeds2` of
deploy/supervisord.conf) and, in embedded mode, `manage.py serve` runs the same runner on
a thread of its own (`FeedThread`). In production (Redis) any number of `manage.py feeds`
processes may run: one is active, the others are hot standbys, by a
lease in Redis (`realtime_project/lease.py`, `run_leased`): the winner sends
`feeds_elected` (the alert engine reads the previous tick, and rebuilds its index from the
database beside the feeds: prices do not wait for it), then `start()`s
the runner with the lease's fencing token on every publication its feeds make; a process
that loses the lease `stop()`s it. Everything the feeds keep in memory is warmed from the
database when they start, so a standby that takes over carries on where the leader was.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import os
import random
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from django.dispatch import Signal

from .appsettings import AppSettings
from .backoff import full_jitter
from .clock import SYSTEM_CLOCK, Clock
from .lease import Lease

logger = logging.getLogger("realtime.feeds")


@runtime_checkable
class Feed(Protocol):
    """A long-lived input (an exchange stream, a chain's heads). See the module docstring."""

    name: str

    async def run(self) -> None:
        """Run until cancelled; clean up (close sockets) in `finally`. Raising means failed."""

    def health(self) -> dict[str, Any]:
        """JSON-able state: connected, last message age, reconnects, errors, `ok`."""


# --- settings --------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedSettings:
    """The `FEEDS` setting: these defaults, then env `FEEDS_<KEY>`, then `settings.FEEDS`
    (`realtime_project.appsettings`; keys are the fields' names in upper case)."""

    #: First restart delay ceiling (full jitter: the delay is uniform in [0, ceiling]).
    backoff_base: float = 1.0
    #: Restart delay ceiling: a feed failing for good is retried at least this often.
    backoff_cap: float = 60.0
    #: A feed that ran this long before failing restarts from the shortest delay.
    stable_after: float = 60.0
    #: Seconds between health snapshots written for other processes.
    health_interval: float = 2.0
    #: A feed that ignores cancellation this long at shutdown is abandoned (and logged).
    stop_timeout: float = 10.0
    #: Extra modules whose `feeds()` also run (tools and tests; apps use `<app>/feeds.py`).
    extra_modules: tuple[str, ...] = ()
    #: Run only the feeds with these names (empty: all).
    only: tuple[str, ...] = ()
    #: One active `manage.py feeds` at a time by a lease in Redis: "auto" (on when the
    #: publication store is Redis), "on" or "off" (every process publishes: tests only).
    lease: str = "auto"
    #: The lease's TTL: a paused active process is replaced within this + `lease_retry` (a
    #: killed one within `lease_retry`: its Redis connection closed).
    lease_duration: float = 3.0
    #: The active process renews every this many seconds.
    lease_renew: float = 1.0
    #: A standby tries to take the lease every this many seconds.
    lease_retry: float = 0.5


FEEDS = AppSettings(
    "FEEDS",
    {f.name.upper(): f.default for f in dataclasses.fields(FeedSettings)},
    env_prefix="FEEDS_",
)


def feed_settings() -> FeedSettings:
    return FEEDS.build(_feed_settings)


def _feed_settings(merged: Mapping[str, Any]) -> FeedSettings:
    def names(key: str) -> tuple[str, ...]:
        return tuple(item.strip() for item in merged[key] if item.strip())

    return FeedSettings(
        backoff_base=float(merged["BACKOFF_BASE"]),
        backoff_cap=float(merged["BACKOFF_CAP"]),
        stable_after=float(merged["STABLE_AFTER"]),
        health_interval=float(merged["HEALTH_INTERVAL"]),
        stop_timeout=float(merged["STOP_TIMEOUT"]),
        extra_modules=names("EXTRA_MODULES"),
        only=names("ONLY"),
        lease=str(merged["LEASE"]).strip().lower(),
        lease_duration=float(merged["LEASE_DURATION"]),
        lease_renew=float(merged["LEASE_RENEW"]),
        lease_retry=float(merged["LEASE_RETRY"]),
    )


# --- discovery -------------------------------------------------------------------------


def discover_feeds(*, only: Iterable[str] = (), extra_modules: Iterable[str] | None = None) -> list[Feed]:
    """Every app's `feeds()` (plus `extra_modules`), optionally narrowed to names in `only`.

    Raises ValueError for a duplicate name, an object that is not a Feed, or an `only`
    name that no app declares (a typo must not start an empty process).
    """
    import importlib

    from .discovery import app_submodules

    modules = [module for _config, module in app_submodules("feeds")]
    for name in feed_settings().extra_modules if extra_modules is None else extra_modules:
        modules.append(importlib.import_module(name))
    found: list[Feed] = []
    for module in modules:
        factory = getattr(module, "feeds", None)
        if factory is None:
            raise ValueError(f"{module.__name__} defines no feeds() function")
        for feed in factory():
            if not isinstance(feed, Feed):
                raise ValueError(f"{module.__name__}.feeds() returned {feed!r}, not a Feed")
            found.append(feed)
    names = [feed.name for feed in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate feed names: {duplicates}")
    wanted = set(only) or set(feed_settings().only)
    if wanted:
        missing = wanted - set(names)
        if missing:
            raise ValueError(f"no such feeds: {sorted(missing)} (declared: {names})")
        found = [feed for feed in found if feed.name in wanted]
    return found


# --- supervision -----------------------------------------------------------------------


class FeedState(enum.StrEnum):
    STOPPED = "stopped"
    RUNNING = "running"
    BACKOFF = "backoff"


@dataclass(eq=False)
class Supervised:
    """One feed under the runner, with its supervision counters."""

    feed: Feed
    state: FeedState = FeedState.STOPPED
    starts: int = 0
    #: Times it ended (raised or returned) and was scheduled again.
    restarts: int = 0
    failures: int = 0
    #: Consecutive quick failures: the backoff attempt number.
    streak: int = 0
    last_error: str = ""
    last_error_at: float | None = None
    running_since: float | None = None
    retry_at: float | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def report(self) -> dict[str, Any]:
        try:
            own = dict(self.feed.health())
        except Exception as exc:  # a broken health() must not break the report
            own = {"ok": False, "error": f"health() failed: {type(exc).__name__}"}
        return {
            "ok": self.state == FeedState.RUNNING and bool(own.get("ok", True)),
            "state": str(self.state),
            "starts": self.starts,
            "restarts": self.restarts,
            "failures": self.failures,
            "last_error": self.last_error or None,
            "last_error_at": self.last_error_at,
            "running_since": self.running_since,
            "retry_at": self.retry_at,
            "health": own,
        }


class HealthStore(Protocol):
    def write(self, snapshot: dict[str, Any]) -> None: ...

    def clear(self, instance: str) -> None: ...


def instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class FeedRunner:
    """Runs feeds, restarts them with full-jitter backoff, reports their health.

    `clock` (wall time for reports, monotonic time for runs, sleeping between restarts)
    and `rng` are injectable so tests drive restarts and delays without waiting.
    """

    def __init__(
        self,
        feeds: Iterable[Feed],
        *,
        conf: FeedSettings | None = None,
        store: HealthStore | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        instance: str | None = None,
    ) -> None:
        self.conf = conf or feed_settings()
        self.supervised = [Supervised(feed) for feed in feeds]
        self.store = store
        self.clock = clock
        self.rng = rng or random.Random()
        self.instance = instance or instance_id()
        self.started_at: float | None = None
        self._health_task: asyncio.Task[None] | None = None
        # One thread for the store: a write still running when `stop()` clears the
        # snapshot finishes first, so a stopped runner never leaves one behind.
        self._store_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feeds-health")

    @property
    def active(self) -> bool:
        return self.started_at is not None

    # --- the switch ------------------------------------------------------------------

    async def start(self) -> None:
        """Start every feed (no-op when already active)."""
        if self.active:
            return
        self.started_at = self.clock.time()
        for sup in self.supervised:
            sup.streak = 0
            sup.task = asyncio.create_task(self._supervise(sup), name=f"feed:{sup.feed.name}")
        if self.store is not None:
            self._health_task = asyncio.create_task(self._report_health(), name="feeds:health")
        logger.info("feeds started: %s", ", ".join(s.feed.name for s in self.supervised) or "(none)")

    async def stop(self) -> None:
        """Cancel every feed and wait for their clean-up (at most `stop_timeout`)."""
        if not self.active:
            return
        tasks = [sup.task for sup in self.supervised if sup.task is not None]
        if self._health_task is not None:
            tasks.append(self._health_task)
        for task in tasks:
            task.cancel()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=self.conf.stop_timeout)
            for task in pending:
                logger.error(
                    "feed task %s ignored cancellation for %.0fs; abandoned", task.get_name(), self.conf.stop_timeout
                )
        for sup in self.supervised:
            sup.task = None
            sup.state = FeedState.STOPPED
            sup.running_since = sup.retry_at = None
        self._health_task = None
        self.started_at = None
        if self.store is not None:
            try:
                await self._in_store_thread(self.store.clear, self.instance)
            except Exception:
                logger.exception("could not clear the feeds' health")
        logger.info("feeds stopped")

    async def run(self, stop: asyncio.Event) -> None:
        """`start()`, wait for `stop`, `stop()` (the command's and the embedded thread's main)."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    # --- supervision -----------------------------------------------------------------

    async def _supervise(self, sup: Supervised) -> None:
        name = sup.feed.name
        while True:
            sup.state = FeedState.RUNNING
            sup.starts += 1
            sup.running_since, sup.retry_at = self.clock.time(), None
            began = self.clock.monotonic()
            try:
                await sup.feed.run()
            except asyncio.CancelledError:
                if _cancelling():
                    sup.state = FeedState.STOPPED
                    raise
                # Cancelled from inside (a library's timeout): a failure like any other.
                self._failed(sup, "CancelledError: cancelled from inside the feed")
                logger.error("feed %s was cancelled from inside; restarting", name)
            except Exception as exc:
                if _cancelling():
                    sup.state = FeedState.STOPPED
                    raise asyncio.CancelledError from exc
                self._failed(sup, f"{type(exc).__name__}: {exc}")
                logger.exception("feed %s failed; restarting", name)
            else:
                if _cancelling():  # it swallowed our cancellation and returned: stop here
                    sup.state = FeedState.STOPPED
                    raise asyncio.CancelledError
                self._failed(sup, "returned: a feed must run until cancelled")
                logger.error("feed %s returned; restarting", name)
            if self.clock.monotonic() - began >= self.conf.stable_after:
                sup.streak = 0
            delay = full_jitter(sup.streak, base=self.conf.backoff_base, cap=self.conf.backoff_cap, rng=self.rng)
            sup.streak += 1
            sup.restarts += 1
            sup.state, sup.running_since, sup.retry_at = FeedState.BACKOFF, None, self.clock.time() + delay
            logger.info("feed %s restarts in %.2fs (attempt %d)", name, delay, sup.streak)
            await self.clock.sleep(delay)

    def _failed(self, sup: Supervised, error: str) -> None:
        sup.failures += 1
        sup.last_error, sup.last_error_at = error[:300], self.clock.time()

    # --- health ----------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The snapshot other processes read (JSON-able)."""
        feeds = {sup.feed.name: sup.report() for sup in self.supervised}
        return {
            "instance": self.instance,
            "active": self.active,
            "started_at": self.started_at,
            "updated_at": self.clock.time(),
            "interval": self.conf.health_interval,
            "ok": self.active and all(f["ok"] for f in feeds.values()),
            "feeds": feeds,
        }

    async def _in_store_thread(self, fn: Callable[..., None], *args: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(self._store_executor, fn, *args)

    async def _report_health(self) -> None:
        assert self.store is not None
        while True:
            try:
                await self._in_store_thread(self.store.write, self.health())
            except Exception:
                logger.exception("could not write the feeds' health")
            await self.clock.sleep(self.conf.health_interval)


def _cancelling() -> bool:
    """Whether the running task was asked to stop (the runner's `stop()`)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


# --- where it runs ---------------------------------------------------------------------


def default_store() -> HealthStore:
    from .feeds_health import CacheHealthStore

    return CacheHealthStore()


#: Sent (sync, from a worker thread) when this process becomes the active feed process,
#: before its feeds start: apps rebuild what they keep in memory from the database (the
#: alert engine's index). Receivers get `token`, the lease's fencing token, and return
#: quickly: the first prices after a takeover wait for them (slow work goes on a thread).
feeds_elected = Signal()


def feeds_lease(conf: FeedSettings | None = None) -> Lease | None:
    """The feed process's lease, or None when it runs alone (no Redis, or lease off)."""
    from .gateway.conf import gateway_settings
    from .lease import RedisLeaseStore

    conf = conf or feed_settings()
    if conf.lease not in ("auto", "on", "off"):
        raise ValueError(f"FEEDS_LEASE must be auto, on or off, not {conf.lease!r}")
    gateway = gateway_settings()
    if conf.lease == "off" or (conf.lease == "auto" and not gateway.history_redis_url):
        return None
    if not gateway.history_redis_url:
        raise ValueError("FEEDS_LEASE=on needs Redis (REALTIME['HISTORY_REDIS_URL'])")
    # In the publications' Redis: the fencing token is checked where they are stored.
    return Lease(
        RedisLeaseStore(gateway.history_redis_url), f"{gateway.key_prefix}:lease:feeds", duration=conf.lease_duration
    )


async def run_leased(runner: FeedRunner, lease: Lease, stop: asyncio.Event) -> None:
    """Run `runner` while this process holds `lease`; stand by while another one does."""
    from .gateway.api import fenced
    from .lease import lead

    conf = runner.conf

    async def elected(token: str) -> None:
        logger.info("feeds: active (lease %s, token %s); rebuilding state from the database", lease.key, token)

        def announce() -> None:
            from django.db import close_old_connections

            try:
                for receiver, result in feeds_elected.send_robust(sender=FeedRunner, token=token):
                    if isinstance(result, Exception):
                        logger.error("feeds_elected receiver %r failed: %r", receiver, result)
            finally:
                close_old_connections()

        await asyncio.get_running_loop().run_in_executor(None, announce)
        with fenced(lease.fence):  # the feeds' tasks inherit it: every publication is fenced
            await runner.start()

    async def deposed() -> None:
        logger.warning("feeds: lease %s lost or given up; stopping the feeds (standby)", lease.key)
        await runner.stop()

    logger.info("feeds: standby until lease %s is free (another process may be active)", lease.key)
    await lead(
        lease,
        stop=stop,
        on_elected=elected,
        on_deposed=deposed,
        renew_every=conf.lease_renew,
        retry_every=conf.lease_retry,
    )


def run_process(feeds: list[Feed], *, conf: FeedSettings | None = None) -> None:
    """The `manage.py feeds` main: run (active or standby, see `run_leased`) until SIGTERM
    or SIGINT, then stop cleanly (and give the lease up at once)."""
    conf = conf or feed_settings()
    lease = feeds_lease(conf)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        runner = FeedRunner(feeds, conf=conf, store=default_store())
        if lease is None:
            await runner.run(stop)
        else:
            await run_leased(runner, lease, stop)

    asyncio.run(main())


class FeedThread:
    """The runner on a thread of its own loop (embedded mode: inside the server process).

    `ready()` is polled before the feeds start: in embedded mode publications go to the
    server loop's in-memory channel layer, which exists only once the server is up.
    """

    def __init__(
        self,
        feeds: list[Feed],
        *,
        conf: FeedSettings | None = None,
        store: HealthStore | None = None,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.runner = FeedRunner(feeds, conf=conf, store=store)
        self._ready = ready
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, name="feeds", daemon=True)

    def start(self) -> FeedThread:
        self._thread.start()
        self._started.wait(10)
        return self

    def _main(self) -> None:
        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            self._started.set()
            while not self._ready():
                try:
                    async with asyncio.timeout(0.1):
                        await self._stop.wait()
                    return
                except TimeoutError:
                    continue
            await self.runner.run(self._stop)

        try:
            asyncio.run(main())
        except Exception:
            logger.exception("embedded feed runner crashed")

    def stop(self, timeout: float | None = None) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop closed meanwhile
                pass
        self._thread.join(timeout if timeout is not None else self.runner.conf.stop_timeout + 5)
