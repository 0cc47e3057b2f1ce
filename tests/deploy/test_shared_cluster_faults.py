"""Faults at the entry and under everything, for real, on one supervised cluster shared by
the tests of this module (started once: the suite stays short) on a Redis of its own:

- **Redis restarted** under the whole cluster while clients follow prices, the market and
  their notifications and a publisher writes notifications: everything recovers with no
  manual step, no seq skipped or repeated, every notification delivered exactly once.
- **A balancer killed** (`kill -9` of one of the two HAProxy instances on the one
  address): only its clients drop, and they are back through the other at once.
  supervisord is frozen (SIGSTOP) around the kill, so nothing can restart the dead
  balancer before the clients are all back; thawed, it restarts it.
- **A gateway's health flapping**: gateway1 reaches PostgreSQL through a gate the test
  shuts and opens, so its `/readyz` fails and recovers; both balancers take it out and
  back, its clients keep being served throughout, new ones go to gateway2 meanwhile.
- **A gateway draining** (SIGTERM): no new connection reaches it while it drains; its
  clients come back through the other gateway and resume with `since`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import websockets

from bench.chaos_clients import Client, recovery_times, stop_all, summary
from realtime_project.cluster import BALANCERS, Cluster, balancer_stats
from realtime_project.gateway.api import apublish
from tests.deploy.test_faults import CHANNELS, RATE, eventually
from tests.support import servers
from tests.support.cluster import cluster_spec, seed_prices
from tests.support.redis_server import RedisServer, use_private_redis
from tests.support.tcp_proxy import Gate

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.e2e]

#: The test's own channel (published by this process every 50 ms).
CHANNEL = "prices:QQQ"


@dataclass
class Shared:
    cluster: Cluster
    redis: RedisServer
    key_prefix: str
    #: gateway1's way to PostgreSQL.
    gate: Gate


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, django_db_setup: None, django_db_blocker: Any) -> Iterator[Shared]:
    from realtime_project.scheduling import install_default_schedule

    redis = RedisServer()
    redis.start()
    key_prefix = f"t{secrets.token_hex(4)}"
    with django_db_blocker.unblock():
        seed_prices()  # the feed processes stream the simulated market
        install_default_schedule()
        database = urlsplit(servers.test_database_url())
    gate = Gate(database.hostname or "127.0.0.1", database.port or 5432)
    gated = urlunsplit(database._replace(netloc=database.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{gate.port}"))
    spec = cluster_spec(tmp_path_factory.mktemp("cluster"), redis_url=redis.url, key_prefix=key_prefix)
    spec.program_env = {"gateway1": {"DATABASE_URL": gated}}
    cluster = Cluster(spec)
    try:
        cluster.start()
        yield Shared(cluster, redis, key_prefix, gate)
    finally:
        cluster.stop()
        gate.close()
        redis.stop()
        # What the module and its cluster wrote outside any test (the seeded market and
        # schedule, prices the cluster stored after the last test's flush) must not reach
        # the tests that run after it on this worker: back to the migrated database.
        from django.core.management import call_command

        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def on_cluster(shared: Shared, settings: Any) -> Iterator[Shared]:
    """This process publishes on the shared cluster's Redis; the cluster is whole after."""
    use_private_redis(settings, shared.redis, shared.key_prefix)
    yield shared
    shared.gate.open()
    shared.cluster.wait_running(timeout=60)
    shared.cluster.wait_ready(60)


class Publisher:
    """Publishes to CHANNEL every 50 ms (each message timestamped) until stopped."""

    def __init__(self) -> None:
        self.running = True
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        n = 0
        while self.running:
            await apublish(CHANNEL, {"symbol": "QQQ", "n": n, "timestamp": time.time() * 1000})
            n += 1
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self.running = False
        await self.task


def start(clients: list[Client], tasks: list[asyncio.Task[Any]]) -> None:
    tasks.extend(asyncio.create_task(c.run()) for c in clients)


def sessions(cluster: Cluster, server: str) -> int:
    return cluster.balancer_sessions()[f"gateways/{server}"]


def server_stat(cluster: Cluster, server: str, field: str) -> int:
    """A counter of one gateway in the checked backend, summed over the balancers."""
    return sum(
        int(row[field] or 0)
        for balancer in BALANCERS
        for row in balancer_stats(cluster.stats_socket(balancer))
        if (row["pxname"], row["svname"]) == ("gateways", server)
    )


async def test_redis_restarted_under_the_whole_cluster_recovers_by_itself_and_loses_nothing(on_cluster: Shared) -> None:
    from django.contrib.auth import get_user_model

    from notifications import api as notifications_api
    from realtime_project.gateway.auth import issue_ticket

    cluster = on_cluster.cluster
    users = await asyncio.to_thread(
        lambda: [get_user_model().objects.create_user(f"redis-{i}", password=None) for i in range(8)]
    )
    clients = [
        Client(i, cluster.ws_url, [*CHANNELS, "notifications"], ticket=lambda pk=u.pk: issue_ticket(pk)[0])
        for i, u in enumerate(users)
    ] + [Client(len(users) + i, cluster.ws_url, list(CHANNELS)) for i in range(8)]
    tasks: list[asyncio.Task[Any]] = []
    start(clients, tasks)
    sent: dict[str, int] = {}
    publishing = True

    async def publisher() -> None:
        n = 0
        while publishing:
            began = time.monotonic()
            spec = {"type": "security_warning", "title": f"redis {n}", "priority": "high",
                    "data": {"sent_ms": time.time() * 1000}, "dedupe_key": f"redis-{n}"}  # fmt: skip
            result = await asyncio.to_thread(notifications_api.send, users[n % len(users)].pk, spec)
            sent[f"n:{result.notification.pk}"] = users[n % len(users)].pk
            n += 1
            # RATE a second, the send's own time included: on a busy machine a send takes
            # a good part of 1 / RATE, and a pause of 1 / RATE after each would halve the rate.
            await asyncio.sleep(max(0.0, 1 / RATE - (time.monotonic() - began)))

    try:
        await eventually(lambda: all(c.live for c in clients), "every client subscribed", 30)
        await eventually(lambda: all(c.price_times for c in clients), "prices reaching every client", 30)
        tasks.append(asyncio.create_task(publisher()))
        await asyncio.sleep(2)

        on_cluster.redis.stop()
        down_at = time.monotonic()
        await asyncio.sleep(3)  # notifications keep being made: into the outbox
        await asyncio.to_thread(on_cluster.redis.start)  # empty: every channel a new epoch
        back_at = time.monotonic()

        # No manual step: every process still (or again) running, the balancers serve,
        # prices flow again to every client, and every client is subscribed.
        await eventually(
            lambda: all(any(t > back_at for t in c.price_times) for c in clients), "prices after the restart", 30
        )
        await eventually(lambda: all(c.live for c in clients), "every client subscribed", 30)
        await asyncio.to_thread(cluster.wait_running, timeout=30)
        await asyncio.to_thread(cluster.wait_ready, 30)
        await asyncio.sleep(3)  # notifications made after the restart too
        publishing = False
        await tasks.pop()
        await eventually(
            lambda: all(sum(c.notifications[n] for c in clients) for n in sent), "every notification delivered", 30
        )
        received = {nid: sum(c.notifications[nid] for c in clients) for nid in sent}
        prices_back = min(min(t for t in c.price_times if t > back_at) for c in clients) - back_at
    finally:
        publishing = False
        await stop_all(clients, tasks)
    stats = summary(clients)
    print("redis restart:", {"down_s": round(back_at - down_at, 1), "prices_back_s": round(prices_back, 2)}, stats)
    assert len(sent) > 40
    assert [n for n, count in received.items() if count != 1] == [], received
    for client in clients[: len(users)]:
        assert set(client.notifications) == {n for n, pk in sent.items() if pk == users[client.index].pk}
    assert stats["gaps"] == 0 and stats["repeats"] == 0, stats


async def test_killing_one_balancer_drops_only_its_clients_who_reconnect_through_the_other_at_once(
    on_cluster: Shared,
) -> None:
    cluster = on_cluster.cluster
    clients = [Client(i, cluster.ws_url, [CHANNEL]) for i in range(40)]
    tasks: list[asyncio.Task[Any]] = []
    start(clients, tasks)
    supervisord = cluster.proc
    assert supervisord is not None
    try:
        await eventually(lambda: all(c.live for c in clients), "every client subscribed", 30)
        publisher = Publisher()
        # The kernel spread the connections over both balancers.
        carried = {b: cluster.balancer_clients(b) for b in BALANCERS}
        assert sum(carried.values()) == len(clients) and min(carried.values()) > 0, carried
        await asyncio.sleep(0.5)

        victim = cluster.pid("haproxy")
        os.kill(supervisord.pid, signal.SIGSTOP)  # nothing restarts it while frozen
        try:
            killed_at = time.monotonic()
            os.killpg(victim, signal.SIGKILL)

            def dropped() -> list[int]:
                return [c.index for c in clients if any(lost >= killed_at for lost, _ in c.outages)]

            back = await eventually(
                lambda: len(dropped()) >= carried["haproxy"] and all(c.live for c in clients),
                "the victim's clients back through haproxy2",
                5,
            )
            await asyncio.sleep(0.5)
            # Only the victim's clients dropped, and every one is now on the survivor.
            assert len(dropped()) == carried["haproxy"], (dropped(), carried)
            assert cluster.balancer_clients("haproxy2") == len(clients)
            worst = max(recovery_times(clients, since=killed_at))
        finally:
            os.kill(supervisord.pid, signal.SIGCONT)
        # Back within the clients' first retry (≤ 250 ms) and a handshake, not a restart.
        assert worst < 1.0, (worst, back)

        # Thawed, supervisord restarts the dead balancer, which serves again.
        await asyncio.to_thread(cluster.wait_running, ["haproxy"], exclude_pids=[victim], timeout=30)
        await asyncio.to_thread(cluster.wait_ready, 30)
        await asyncio.sleep(0.5)
        await publisher.stop()
    finally:
        await stop_all(clients, tasks)
    stats = summary(clients)
    print("balancer kill:", {"carried": carried, "worst_back_s": round(worst, 3)}, stats)
    assert stats["gaps"] == 0 and stats["repeats"] == 0 and stats["resets"] == 0, stats


async def test_a_gateways_health_flapping_takes_it_out_and_back_while_its_clients_are_served(
    on_cluster: Shared,
) -> None:
    cluster, gate = on_cluster.cluster, on_cluster.gate
    clients = [Client(i, cluster.ws_url, [CHANNEL]) for i in range(16)]
    tasks: list[asyncio.Task[Any]] = []
    start(clients, tasks)
    newcomers: list[Client] = []
    try:
        await eventually(lambda: all(c.live for c in clients), "every client subscribed", 30)
        publisher = Publisher()
        assert sessions(cluster, "gw1") > 0 and sessions(cluster, "gw2") > 0
        began = time.monotonic()
        for _ in range(2):  # out and back, twice
            gate.shut()  # gateway1 cannot reach PostgreSQL: /readyz 503
            took_out = await eventually(
                lambda: cluster.balancer_servers()["gateways/gw1"] == "DOWN", "gateway1 out of both balancers", 10
            )
            # While it is out, new clients all go to gateway2.
            before = (sessions(cluster, "gw1"), sessions(cluster, "gw2"))
            batch = [Client(100 + len(newcomers) + i, cluster.ws_url, [CHANNEL]) for i in range(6)]
            newcomers += batch
            start(batch, tasks)
            await eventually(lambda b=batch: all(c.live for c in b), "newcomers subscribed", 10)
            assert (sessions(cluster, "gw1"), sessions(cluster, "gw2")) == (before[0], before[1] + 6)
            gate.open()
            back_in = await eventually(
                lambda: cluster.balancer_servers()["gateways/gw1"] == "UP", "gateway1 back in both balancers", 10
            )
            print(f"health flap: out after {took_out:.2f} s, back after {back_in:.2f} s")
        # Back in rotation: the next clients go to gateway1 (it has the fewest).
        before_gw1 = sessions(cluster, "gw1")
        batch = [Client(200 + i, cluster.ws_url, [CHANNEL]) for i in range(4)]
        start(batch, tasks)
        await eventually(lambda: all(c.live for c in batch), "last clients subscribed", 10)
        assert sessions(cluster, "gw1") > before_gw1
        await publisher.stop()
        # The first clients were served throughout: never dropped, never silent > 1 s.
        assert all(not c.outages for c in clients), [c.outages for c in clients]
        for client in clients:
            times = [t for t in client.price_times if t >= began]
            assert max(b - a for a, b in itertools.pairwise(times)) < 1.0
    finally:
        await stop_all([*clients, *newcomers], tasks)
    stats = summary([*clients, *newcomers])
    assert stats["gaps"] == 0 and stats["repeats"] == 0 and not stats["errors"], stats


async def test_a_draining_gateway_gets_no_new_connection_and_its_clients_resume_on_the_other(
    on_cluster: Shared,
) -> None:
    cluster = on_cluster.cluster
    clients = [Client(i, cluster.ws_url, [CHANNEL]) for i in range(30)]
    tasks: list[asyncio.Task[Any]] = []
    start(clients, tasks)
    outcomes: list[str] = []

    async def newcomer() -> None:
        """A fresh connection during the drain: it must be served (by gateway1)."""
        try:
            async with websockets.connect(cluster.ws_url, open_timeout=5) as ws:
                async with asyncio.timeout(5):
                    outcomes.append(json.loads(await ws.recv())["type"])
        except Exception as exc:
            outcomes.append(type(exc).__name__)

    try:
        await eventually(lambda: all(c.live for c in clients), "every client subscribed", 30)
        publisher = Publisher()
        on_gw2 = sessions(cluster, "gw2")
        assert on_gw2 > 0
        refused_before = server_stat(cluster, "gw2", "hrsp_4xx")
        old = cluster.kill("gateway2", signal.SIGTERM)  # drain: reconnect frames, then 1012
        drained_at = time.monotonic()
        # New connections throughout the drain (and its first instants most of all).
        for _ in range(20):
            await asyncio.gather(*(newcomer() for _ in range(3)))
            await asyncio.sleep(0.02)
        await asyncio.to_thread(cluster.wait_running, ["gateway2"], exclude_pids=[old], timeout=30)
        await eventually(lambda: all(c.live for c in clients), "drained clients back", 15)
        assert server_stat(cluster, "gw2", "hrsp_4xx") == refused_before  # nothing refused by gateway2
        assert outcomes == ["welcome"] * len(outcomes), outcomes
        await asyncio.to_thread(cluster.wait_ready, 30)
        await asyncio.sleep(0.5)
        await publisher.stop()
    finally:
        await stop_all(clients, tasks)
    stats = summary(clients)
    back = recovery_times(clients, since=drained_at)
    print("drain:", {"drained": on_gw2, "worst_back_s": round(max(back), 2)}, stats)
    assert len(back) == on_gw2  # exactly gateway2's clients were moved
    # They resumed where they were (`since`, recovered), nothing skipped or repeated.
    assert stats["gaps"] == 0 and stats["repeats"] == 0 and stats["resets"] == 0, stats
    assert "InvalidStatus" not in stats["errors"], stats
