"""Leases in real Redis: the store's scripts, the takeover of a holder whose connection is
gone, fencing of the publication path with a lease's token (the context fence a leased
runner sets), and two beats on one lease."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from realtime_project.gateway.api import FencedOut, apublish, apublish_many, fenced
from realtime_project.lease import Lease, RedisLeaseStore, split_value

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


def counter(token: str | None) -> int:
    assert token is not None
    return int(token.split(".")[0])


def test_the_lease_carries_the_holders_client_id_and_a_renewal_after_a_reconnect_updates_it(
    store: RedisLeaseStore, redis_url: str, key_prefix: str
) -> None:
    key = f"{key_prefix}:lease:x"
    other = RedisLeaseStore(redis_url)
    try:
        token = store.acquire(key, "a", 10_000)
        read = other.client.get(key)
        assert split_value(read) == (token, store.client.client_id()) and store.holder(key) == token
        assert other.acquire(key, "b", 10_000) is None  # alive (a paused holder too): held
        # The holder reconnects (a Redis restart, a network cut): its renewal stores the new id.
        store.client.connection.disconnect()
        assert store.renew(key, token or "", 10_000)
        now = other.client.get(key)
        assert now != read and split_value(now) == (token, store.client.client_id())
        # A standby that read the old value, found its client gone and deletes "if unchanged"
        # deletes nothing: the value changed in between.
        assert not other.remove_if(key, read) and other.client.get(key) == now
        assert other.acquire(key, "b", 10_000) is None
    finally:
        other.close()
        store.client.delete(key, f"{key}:counter")


def test_a_holder_whose_connection_closed_is_replaced_at_once_with_the_next_token(
    redis_url: str, key_prefix: str
) -> None:
    key = f"{key_prefix}:lease:x"
    holder, standby = RedisLeaseStore(redis_url), RedisLeaseStore(redis_url)
    try:
        first = holder.acquire(key, "a", 10_000)
        assert standby.acquire(key, "b", 10_000) is None
        holder.close()  # its socket closes, as a killed process's does
        deadline = time.monotonic() + 5
        while (second := standby.acquire(key, "b", 10_000)) is None and time.monotonic() < deadline:
            time.sleep(0.01)  # Redis frees the closed connection at its next event-loop turn
        assert second is not None and counter(second) == counter(first) + 1
        assert standby.client.pttl(key) > 9_000  # long before the old lease would have lapsed
        old = RedisLeaseStore(redis_url)  # the old holder, were it alive, is fenced out
        assert not old.renew(key, first or "", 10_000) and not old.release(key, first or "")
        old.close()
        assert standby.holder(key) == second
    finally:
        standby.client.delete(key, f"{key}:counter")
        standby.close()


def test_without_client_list_id_a_dead_holder_is_replaced_only_at_expiry(
    store: RedisLeaseStore, redis_url: str, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis that refuses CLIENT LIST ID (here an ACL user without it; likewise a renamed
    command or a Redis before 6.2): expiry only, logged once."""
    key, user = f"{key_prefix}:lease:x", f"lease-test-{secrets.token_hex(4)}"
    store.client.acl_setuser(
        user, enabled=True, nopass=True, keys=["*"], channels=["*"], commands=["+@all", "-client|list"]
    )
    host = redis_url.split("://", 1)[1]
    standby = RedisLeaseStore(f"redis://{user}:x@{host}")
    holder = RedisLeaseStore(redis_url)
    try:
        holder.acquire(key, "a", 10_000)
        holder.close()
        with caplog.at_level(logging.WARNING, logger="realtime.lease"):
            assert standby.acquire(key, "b", 10_000) is None
            assert standby.acquire(key, "b", 10_000) is None
        assert not standby.liveness
        assert len([r for r in caplog.records if "CLIENT LIST ID" in r.getMessage()]) == 1
        store.client.delete(key)  # it lapses
        assert standby.acquire(key, "b", 10_000) is not None
    finally:
        standby.close()
        store.client.acl_deluser(user)
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
    from tests.support.clock import FakeClock

    clock = FakeClock()
    lease = Lease(store, key, owner="a", clock=clock)
    a = scheduler(lease, sent, "a")
    try:
        assert lease.hold()
        clock.advance(10.0)  # paused between its renewal and the send
        entry = next(iter(a.schedule.values()))
        a.apply_entry(entry)
        assert sent == []
    finally:
        a.close()
        store.client.delete(key, f"{key}:counter")
