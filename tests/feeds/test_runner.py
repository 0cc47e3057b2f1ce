"""The feed runner: supervision, full-jitter restarts, the on/off switch, health (no waiting)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest

from realtime_project.appsettings import reload_all
from realtime_project.backoff import full_jitter
from realtime_project.feeds import FeedRunner, FeedSettings, FeedState, discover_feeds
from realtime_project.feeds_health import CacheHealthStore, feeds_report
from tests.support.clock import FakeClock


class ScriptedFeed:
    """Each run takes the next step: an exception to raise, "return", or "block"."""

    def __init__(self, name: str, steps: list[Any]) -> None:
        self.name = name
        self.steps = list(steps)
        self.runs = 0
        self.cleanups = 0
        self.started = asyncio.Event()

    async def run(self) -> None:
        self.runs += 1
        self.started.set()
        step = self.steps.pop(0) if self.steps else "block"
        try:
            if isinstance(step, BaseException):
                raise step
            if step == "block":
                await asyncio.Event().wait()
        finally:
            self.cleanups += 1

    def health(self) -> dict[str, Any]:
        return {"ok": True, "runs": self.runs}


class MemoryStore:
    def __init__(self) -> None:
        self.snapshot: dict[str, Any] | None = None
        self.cleared: list[str] = []

    def write(self, snapshot: dict[str, Any]) -> None:
        self.snapshot = snapshot

    def clear(self, instance: str) -> None:
        self.cleared.append(instance)
        self.snapshot = None


def make_runner(feeds: list[Any], time: FakeClock, **conf: Any) -> FeedRunner:
    settings = FeedSettings(**{"backoff_base": 1.0, "backoff_cap": 8.0, "stable_after": 60.0, **conf})
    return FeedRunner(
        feeds,
        conf=settings,
        clock=time,
        rng=random.Random(7),
        instance="test:1",
    )


async def until(predicate: Callable[[], bool]) -> None:
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def test_a_failing_feed_is_restarted_with_full_jitter_backoff_and_counted() -> None:
    time = FakeClock()
    feed = ScriptedFeed("flaky", [RuntimeError("one"), RuntimeError("two"), RuntimeError("three")])
    runner = make_runner([feed], time)
    await runner.start()
    sup = runner.supervised[0]
    await until(lambda: len(time.sleeps) == 1)
    assert sup.state == FeedState.BACKOFF and sup.failures == 1 and sup.last_error == "RuntimeError: one"
    for expected_runs in (2, 3, 4):
        await time.run_for(max(time.sleeps[-1], 0.0))
        await until(lambda n=expected_runs: feed.runs == n)
    await until(lambda: sup.state == FeedState.RUNNING)
    # Full jitter: attempt n waits uniformly in [0, min(cap, base * 2**n)].
    rng = random.Random(7)
    assert time.sleeps == [full_jitter(n, base=1.0, cap=8.0, rng=rng) for n in range(3)]
    assert all(0 <= d <= c for d, c in zip(time.sleeps, (1.0, 2.0, 4.0), strict=True))
    assert (sup.starts, sup.restarts, sup.failures) == (4, 3, 3)
    assert feed.cleanups == 3  # every failed run cleaned up
    await runner.stop()
    assert feed.cleanups == 4 and sup.state == FeedState.STOPPED


async def test_a_feed_that_ran_long_enough_restarts_from_the_shortest_delay() -> None:
    time = FakeClock()
    feed = ScriptedFeed("x", [RuntimeError("a"), RuntimeError("b")])
    runs_long = False

    async def run() -> None:
        feed.runs += 1
        if feed.steps:
            raise feed.steps.pop(0)
        nonlocal runs_long
        runs_long = True
        await time.sleep(120)  # two minutes of work, then a failure
        raise RuntimeError("after a long run")

    feed.run = run  # type: ignore[method-assign]
    runner = make_runner([feed], time, backoff_base=1.0, backoff_cap=1000.0, stable_after=60.0)
    await runner.start()
    sup = runner.supervised[0]
    await until(lambda: len(time.sleeps) == 1)
    await time.run_for(time.sleeps[0])
    await until(lambda: len(time.sleeps) == 2)
    assert sup.streak == 2  # two quick failures: the next delay's ceiling is 4 s
    await time.run_for(time.sleeps[1])
    await until(lambda: runs_long and time.sleeps[-1] == 120)
    await time.run_for(120)
    await until(lambda: len(time.sleeps) == 4)
    assert sup.streak == 1 and time.sleeps[3] <= 1.0  # attempt 0 again
    await runner.stop()


async def test_a_feed_that_returns_counts_as_a_failure_and_is_restarted() -> None:
    time = FakeClock()
    feed = ScriptedFeed("returns", ["return"])
    runner = make_runner([feed], time)
    await runner.start()
    await until(lambda: len(time.sleeps) == 1)
    sup = runner.supervised[0]
    assert sup.failures == 1 and "returned" in sup.last_error
    await time.run_for(time.sleeps[0])
    await until(lambda: feed.runs == 2)
    await runner.stop()


async def test_one_failing_feed_never_stops_the_others() -> None:
    time = FakeClock()
    steady = ScriptedFeed("steady", ["block"])
    broken = ScriptedFeed("broken", [ValueError("bad frame")] * 10)
    runner = make_runner([steady, broken], time)
    await runner.start()
    for _ in range(5):
        await until(lambda: runner.supervised[1].state == FeedState.BACKOFF)
        await time.run_for(10)
    assert steady.runs == 1 and runner.supervised[0].state == FeedState.RUNNING
    assert runner.supervised[1].failures >= 5
    health = runner.health()
    assert health["feeds"]["steady"]["ok"] is True
    assert health["feeds"]["broken"]["ok"] is False and health["ok"] is False
    await runner.stop()


async def test_stop_and_start_switch_the_whole_runner_and_report_health() -> None:
    time = FakeClock()
    feed = ScriptedFeed("a", ["block", "block"])
    store = MemoryStore()
    runner = make_runner([feed], time, health_interval=2.0)
    runner.store = store
    await runner.start()
    await until(lambda: store.snapshot is not None)
    snap = store.snapshot
    assert snap is not None and snap["active"] is True and snap["instance"] == "test:1"
    assert snap["feeds"]["a"]["state"] == "running" and snap["feeds"]["a"]["health"] == {"ok": True, "runs": 1}
    await runner.stop()
    assert not runner.active and feed.cleanups == 1
    assert store.cleared == ["test:1"] and store.snapshot is None
    # Switched on again (e.g. a lease acquired after a standby period).
    await runner.start()
    await until(lambda: feed.runs == 2)
    assert runner.active and runner.supervised[0].starts == 2
    await runner.stop()


async def test_a_feed_that_ignores_cancellation_is_abandoned_after_the_stop_timeout() -> None:
    time = FakeClock()
    release = asyncio.Event()

    class Stubborn:
        name = "stubborn"

        async def run(self) -> None:
            while not release.is_set():
                try:
                    await release.wait()
                except asyncio.CancelledError:
                    continue  # a badly written feed

        def health(self) -> dict[str, Any]:
            return {}

    runner = make_runner([Stubborn()], time, stop_timeout=0.01)
    await runner.start()
    await asyncio.sleep(0)
    task = runner.supervised[0].task
    await runner.stop()
    assert not runner.active and runner.supervised[0].state == FeedState.STOPPED
    release.set()
    # When it finally returns, its supervisor ends too instead of restarting it.
    assert task is not None
    await asyncio.wait([task])
    assert task.cancelled() and time.sleeps == []


async def test_a_broken_health_method_is_reported_not_raised() -> None:
    time = FakeClock()

    class BadHealth(ScriptedFeed):
        def health(self) -> dict[str, Any]:
            raise KeyError("oops")

    runner = make_runner([BadHealth("bad", ["block"])], time)
    await runner.start()
    await asyncio.sleep(0)
    report = runner.health()["feeds"]["bad"]
    assert report["ok"] is False and "KeyError" in report["health"]["error"]
    await runner.stop()


def test_full_jitter_bounds_and_bad_arguments() -> None:
    rng = random.Random(1)
    for attempt in range(40):
        delay = full_jitter(attempt, base=0.5, cap=30.0, rng=rng)
        assert 0.0 <= delay <= min(30.0, 0.5 * 2**attempt)
    with pytest.raises(ValueError):
        full_jitter(-1, base=1, cap=1)
    with pytest.raises(ValueError):
        full_jitter(0, base=0, cap=1)


def test_discovery_rejects_duplicates_unknown_names_and_non_feeds(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    found = discover_feeds(extra_modules=["tests.support.sample_feeds"])
    names = [f.name for f in found]
    assert {"sample.steady", "sample.flaky"} <= set(names)
    assert [f.name for f in discover_feeds(only=["sample.flaky"], extra_modules=["tests.support.sample_feeds"])] == [
        "sample.flaky"
    ]
    with pytest.raises(ValueError, match="no such feeds"):
        discover_feeds(only=["nope"], extra_modules=["tests.support.sample_feeds"])
    with pytest.raises(ValueError, match="duplicate feed names"):
        discover_feeds(extra_modules=["tests.support.sample_feeds", "tests.support.sample_feeds"])
    bad = types.ModuleType("bad_feeds")
    bad.feeds = lambda: [object()]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bad_feeds", bad)
    with pytest.raises(ValueError, match="not a Feed"):
        discover_feeds(extra_modules=["bad_feeds"])


def test_settings_come_from_feeds_and_the_environment(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from realtime_project.feeds import feed_settings

    settings.FEEDS = {"BACKOFF_CAP": 5}
    monkeypatch.setenv("FEEDS_BACKOFF_BASE", "0.25")
    reload_all()  # the environment is read once per process
    conf = feed_settings()
    assert conf.backoff_cap == 5 and conf.backoff_base == 0.25
    settings.FEEDS = {"BACKOF_CAP": 5}
    with pytest.raises(ValueError, match="unknown FEEDS settings"):
        feed_settings()


def test_the_report_judges_the_snapshot_by_its_age() -> None:
    store = CacheHealthStore(key="test:feeds:health")
    assert feeds_report(store=store)["running"] is False
    snapshot = {
        "instance": "h:1",
        "active": True,
        "ok": True,
        "updated_at": 10_000.0,
        "interval": 2.0,
        "feeds": {"a": {"ok": True}},
    }
    store.write(snapshot)
    fresh = feeds_report(now=10_001.0, store=store)
    assert fresh["ok"] is True and fresh["running"] is True and fresh["feeds"] == {"a": {"ok": True}}
    old = feeds_report(now=10_000.0 + 3 * 2.0 + 6, store=store)
    assert old["ok"] is False and old["running"] is False and "stuck or gone" in old["detail"]
    store.clear("someone-else")  # another instance's clear leaves ours alone
    assert store.read() is not None
    store.clear("h:1")
    assert store.read() is None
