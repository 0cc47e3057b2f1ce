"""The `wallets.chains` feed: a watcher per enabled chain, started, stopped and restarted as
the chain rows change, a failing watcher restarted alone; discovered by the feed runner."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from typing import Any

from realtime_project.feeds import discover_feeds
from wallets.feeds import ChainsFeed
from wallets.watcher import ChainConfig


def config(chain_id: int, **changes: Any) -> ChainConfig:
    base = ChainConfig(chain_id=chain_id, name=f"c{chain_id}", rpc_url="http://node", ws_url="", poll_interval=1.0)
    return replace(base, **changes)


class NoJitter(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return 0.0


class FakeWatcher:
    made: list[FakeWatcher] = []

    def __init__(self, config: ChainConfig, work: Any, *, clock: Any) -> None:
        self.config = config
        self.fail = False
        self.cancelled = False
        FakeWatcher.made.append(self)

    async def run(self) -> None:
        try:
            while not self.fail:
                await asyncio.sleep(0.002)
            raise RuntimeError("node exploded")
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    def health(self) -> dict[str, Any]:
        return {"ok": not self.fail, "mode": "poll"}


async def until(predicate: Any, what: str) -> None:
    for _ in range(5_000):
        if predicate():
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"timed out waiting for {what}")


async def test_watchers_follow_the_chain_rows_and_a_failing_one_restarts_alone() -> None:
    FakeWatcher.made = []
    configs = [config(1), config(2)]
    feed = ChainsFeed(
        refresh=0.005,
        loader=lambda: list(configs),
        work_factory=lambda c: None,  # type: ignore[arg-type,return-value]
        watcher_factory=FakeWatcher,  # type: ignore[arg-type]
        rng=NoJitter(),
    )
    task = asyncio.create_task(feed.run())
    try:
        await until(lambda: len(FakeWatcher.made) == 2, "a watcher per chain")
        assert sorted(w.config.chain_id for w in FakeWatcher.made) == [1, 2]
        assert feed.health() == {
            "ok": True,
            "chains": {
                "1": {"ok": True, "mode": "poll", "restarts": 0},
                "2": {"ok": True, "mode": "poll", "restarts": 0},
            },
        }

        first_2 = next(w for w in FakeWatcher.made if w.config.chain_id == 2)
        configs[1] = config(2, ws_url="ws://node")  # edited in the admin: restarted with it
        await until(lambda: len(FakeWatcher.made) == 3, "chain 2 restarted")
        assert first_2.cancelled and FakeWatcher.made[-1].config.ws_url == "ws://node"

        first_1 = next(w for w in FakeWatcher.made if w.config.chain_id == 1)
        configs.pop(0)  # disabled: stopped
        await until(lambda: first_1.cancelled, "chain 1 stopped")
        await until(lambda: "1" not in feed.health()["chains"], "chain 1 gone from the health")

        failing = FakeWatcher.made[-1]
        failing.fail = True
        await until(lambda: len(FakeWatcher.made) == 4, "the failed watcher restarted")
        health = feed.health()["chains"]["2"]
        assert health["restarts"] == 1 and health["watcher_error"] == "RuntimeError: node exploded"
        assert not any(w.cancelled for w in FakeWatcher.made[3:])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert FakeWatcher.made[-1].cancelled  # the feed's cancellation reaches every watcher


def test_the_feed_runner_discovers_the_wallets_feed() -> None:
    assert "wallets.chains" in [feed.name for feed in discover_feeds()]
