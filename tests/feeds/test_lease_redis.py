"""Leases in real Redis: the store's scripts, fencing of the publication path with a
lease's token (the context fence a leased runner sets), and two beats on one lease."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from realtime_project.gateway.api import FencedOut, apublish, apublish_many, fenced
from realtime_project.lease import Lease, RedisLeaseStore

pytestmark = [pytest.mark.redis]


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisLeaseStore]:
    s = RedisLeaseStore(redis_url)
    yield s
    s.close()


def test_store_scripts_take_renew_and_release_atomically(store: RedisLeaseStore, key_prefix: str) -> None:
    key = f"{key_prefix}:lease:x"
    try:
        first = store.acquire(key, "a", 3000)
        assert first is not None and first.endswith(".a")
        assert store.acquire(key, "b", 3000) is None  # held
        assert 0 < store.client.pttl(key) <= 3000
        assert store.renew(key, first, 5000) and 3000 < store.client.pttl(key) <= 5000
        assert not store.renew(key, "1.b", 5000)  # another token renews nothing
        assert not store.release(key, "1.b") and store.holder(key) == first
        assert store.release(key, first) and store.holder(key) is None
        second = store.acquire(key, "b", 3000)
        assert second is not None and int(second.split(".")[0]) == int(first.split(".")[0]) + 1
        assert store.acquire(key, "c", 3000) is None
        store.client.delete(key)  # it lapses, as when the holder dies
        third = store.acquire(key, "c", 3000)
        assert third is not None and third.endswith(".c")
    finally:
        store.client.delete(key, f"{key}:counter")


@pytest.mark.django_db(transaction=True)
async def test_a_lease_token_fences_publications_made_in_its_context(
    redis_settings: Any, store: RedisLeaseStore, key_prefix: str
) -> None:
    key = f"{key_prefix}:lease:feeds"
    old = Lease(store, key, owner="old")
    new = Lease(store, key, owner="new")
    assert await asyncio.to_thread(old.hold)

    async def ticker() -> Any:
        return await apublish("prices:BTC", {"from": "old"})

    with fenced(old.fence):
        task = asyncio.create_task(ticker())  # a feed task inherits the fence
    first = await task
    # The old holder is paused past its lease; the new one takes it.
    store.client.delete(key)
    assert await asyncio.to_thread(new.hold)
    with fenced(old.fence):
        with pytest.raises(FencedOut, match=old.token or ""):
            await asyncio.create_task(ticker())
        with pytest.raises(FencedOut):
            await apublish_many([("prices:BTC", {"from": "old"}), ("prices:ETH", {"from": "old"})])
    with fenced(new.fence):
        pub = await apublish("prices:BTC", {"from": "new"})
    assert pub.seq == first.seq + 1  # nothing refused took a seq
    assert await apublish("prices:BTC", {"unfenced": True}) is not None  # outside the context: no fence


# --- beat --------------------------------------------------------------------------------


@pytest.fixture
def beat_schedule(db: None) -> Iterator[str]:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    interval = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.all().update(enabled=False)
    task = PeriodicTask.objects.create(
        name="lease test",
        task="tests.lease.record",
        interval=interval,
        kwargs=json.dumps({}),
        last_run_at=timezone.now() - timedelta(seconds=5),
    )
    yield task.name


def scheduler(lease: Lease, sent: list[tuple[str, str]], owner: str) -> Any:
    from realtime_project.beat import LeasedScheduler
    from realtime_project.celery import app

    class Recording(LeasedScheduler):
        def send_task(self, name: str, *args: Any, **kwargs: Any) -> None:
            if name.startswith("tests."):  # not celery's own default entries
                sent.append((owner, name))

    return Recording(app=app, lease=lease)


def tick_until_quiet(s: Any, rounds: int = 20) -> None:
    for _ in range(rounds):
        if s.tick() > 0:
            return


@pytest.mark.django_db(transaction=True)
def test_two_beats_never_double_schedule_and_the_standby_resumes_from_the_last_run(
    beat_schedule: str, store: RedisLeaseStore, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_celery_beat.models import PeriodicTask

    key = f"{key_prefix}:lease:beat"
    sent: list[tuple[str, str]] = []
    a = scheduler(Lease(store, key, owner="a"), sent, "a")
    b = scheduler(Lease(store, key, owner="b"), sent, "b")
    try:
        tick_until_quiet(a)
        tick_until_quiet(b)
        assert sent == [("a", "tests.lease.record")]  # the due task, once, by the holder
        assert a.leading and not b.leading
        assert b.tick() == b.retry_every  # a standby only tries the lease
        ran = PeriodicTask.objects.get(name=beat_schedule).last_run_at
        assert ran is not None and timezone.now() - ran < timedelta(seconds=5)  # written at once

        # `a` dies: its lease lapses; `b` takes over, from the database's last run: the task
        # is not due again yet, so nothing is sent twice.
        store.client.delete(key)
        tick_until_quiet(b)
        assert b.leading and sent == [("a", "tests.lease.record")]
        # `a` wakes up: its renewal is refused, it sends nothing and stands by.
        assert a.tick() == a.retry_every and not a.leading
        # Once due again (an admin edit), the new holder sends it, once.
        task = PeriodicTask.objects.get(name=beat_schedule)
        task.last_run_at = timezone.now() - timedelta(seconds=5)
        task.save()
        tick_until_quiet(b)
        tick_until_quiet(a)
        assert sent == [("a", "tests.lease.record"), ("b", "tests.lease.record")]
    finally:
        a.close()
        b.close()
        store.client.delete(key, f"{key}:counter")


@pytest.mark.django_db(transaction=True)
def test_a_beat_whose_lease_lapsed_sends_nothing(beat_schedule: str, store: RedisLeaseStore, key_prefix: str) -> None:
    key = f"{key_prefix}:lease:beat"
    sent: list[tuple[str, str]] = []
    now = [0.0]
    lease = Lease(store, key, owner="a", clock=lambda: now[0])
    a = scheduler(lease, sent, "a")
    try:
        assert lease.hold()
        now[0] += 10.0  # paused between its renewal and the send
        entry = next(iter(a.schedule.values()))
        a.apply_entry(entry)
        assert sent == []
    finally:
        a.close()
        store.client.delete(key, f"{key}:counter")
