"""Two balancers on one address, for real: `kill -9` of one HAProxy drops only the clients it
carried, and they are back at once through the other one, before anything restarts it.

The supervised cluster's two HAProxy instances (deploy/supervisord.conf `haproxy` and
`haproxy2`, both from deploy/haproxy.cfg.template) listen on the same address with
SO_REUSEPORT. To show the survivors do not wait for the supervisor, supervisord itself is
frozen (SIGSTOP) around the kill: nothing can restart the dead balancer until the clients
are all back; then it is thawed and restarts it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from bench.chaos_clients import Client, recovery_times, stop_all, summary
from realtime_project.cluster import Cluster
from realtime_project.gateway.api import apublish
from tests.deploy.test_faults import eventually
from tests.support.cluster import cluster_spec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.e2e]

CLIENTS = 40
CHANNEL = "prices:QQQ"


async def test_killing_one_balancer_drops_only_its_clients_who_reconnect_through_the_other_at_once(
    tmp_path: Path, redis_settings: Any, redis_url: str, key_prefix: str
) -> None:
    cluster = Cluster(
        cluster_spec(tmp_path, redis_url=redis_url, key_prefix=key_prefix),
        programs=["haproxy", "haproxy2", "gateway1", "gateway2"],
    )
    await asyncio.to_thread(cluster.start)
    clients = [Client(i, cluster.ws_url, [CHANNEL]) for i in range(CLIENTS)]
    tasks = [asyncio.create_task(c.run()) for c in clients]
    publishing = True

    async def publisher() -> None:  # a message every 50 ms throughout: none skipped
        n = 0
        while publishing:
            await apublish(CHANNEL, {"symbol": "QQQ", "n": n, "timestamp": time.time() * 1000})
            n += 1
            await asyncio.sleep(0.05)

    supervisord = cluster.proc
    assert supervisord is not None
    try:
        await eventually(lambda: all(c.live for c in clients), "every client subscribed", 30)
        publish_task = asyncio.create_task(publisher())
        # The kernel spread the connections over both balancers.
        carried = {b: cluster.balancer_clients(b) for b in ("haproxy", "haproxy2")}
        assert sum(carried.values()) == CLIENTS and min(carried.values()) > 0, carried
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
            assert cluster.balancer_clients("haproxy2") == CLIENTS
            worst = max(recovery_times(clients, since=killed_at))
        finally:
            os.kill(supervisord.pid, signal.SIGCONT)
        # Back within the clients' first retry (≤ 250 ms) and a handshake, not a restart.
        assert worst < 1.0, (worst, back)

        # Thawed, supervisord restarts the dead balancer, which serves again.
        await asyncio.to_thread(cluster.wait_running, ["haproxy"], exclude_pids=[victim], timeout=30)
        await asyncio.to_thread(cluster.wait_ready, 30)
        await asyncio.sleep(0.5)
        publishing = False
        await publish_task
    finally:
        publishing = False
        await stop_all(clients, tasks)
        returncode = await asyncio.to_thread(cluster.stop)
    stats = summary(clients)
    print("balancer kill:", {"carried": carried, "worst_back_s": round(worst, 3)}, stats)
    assert returncode == 0
    assert stats["gaps"] == 0 and stats["repeats"] == 0 and stats["resets"] == 0, stats
