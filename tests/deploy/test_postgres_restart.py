"""PostgreSQL restarted under the balanced gateways, on a private PostgreSQL server.

During the outage the gateways keep their WebSockets (delivery goes through Redis), the
API answers a clean JSON 503 with a code through the balancer (not HAProxy's error
page), and once the database is back everything answers again with nothing lost.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import websockets
from django.db import InterfaceError, OperationalError
from django.test import RequestFactory

from realtime_project.cluster import Cluster
from realtime_project.db_outage import DatabaseUnavailableMiddleware
from realtime_project.gateway.api import publish
from tests.deploy.test_cluster import get, until
from tests.gateway.test_scale_out import recv
from tests.support import servers
from tests.support.cluster import cluster_spec, seed_prices
from tests.support.private_postgres import PrivatePostgres

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.e2e]


async def eventually(check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await asyncio.to_thread(check)
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check}")
        await asyncio.sleep(0.2)


def checked_servers(cluster: Cluster) -> set[str]:
    """The states of the gateways in the backend checked on /readyz."""
    return {state for name, state in cluster.balancer_servers().items() if name.startswith("gateways/")}


async def test_postgres_restart_keeps_sockets_answers_503_with_a_code_and_loses_nothing(
    tmp_path: Path, redis_settings: Any, redis_url: str, key_prefix: str
) -> None:
    # A row written before the outage, served after it.
    await asyncio.to_thread(seed_prices)
    with PrivatePostgres() as pg:
        await asyncio.to_thread(pg.copy_database, servers.test_database_url(), "app")
        spec = cluster_spec(tmp_path, redis_url=redis_url, key_prefix=key_prefix, database_url=pg.url("app"))
        cluster = Cluster(spec, programs=["haproxy", "gateway1", "gateway2"])
        await asyncio.to_thread(cluster.start)
        history = f"{cluster.url}/api/prices/BTC/history/"
        try:
            code, body, _ = await asyncio.to_thread(get, history)
            assert code == 200 and json.loads(body)["symbol"] == "BTC", body
            code, _, _ = await asyncio.to_thread(get, f"{cluster.url}/api/prices/NOPE/history/")
            assert code == 404  # the symbol table is read: the database answers

            async with websockets.connect(cluster.ws_url) as ws:
                assert (await recv(ws))["type"] == "welcome"
                await ws.send(json.dumps({"type": "subscribe", "id": 1, "channel": "prices:QQQ"}))
                await until(ws, lambda f: f["type"] == "subscribed")
                first = await asyncio.to_thread(publish, "prices:QQQ", {"symbol": "QQQ", "n": 1})

                await asyncio.to_thread(pg.stop)
                # Every gateway is unready (database down) and out of the checked backend;
                # the balancer still reaches them and the API says why, with a code.
                await eventually(lambda: checked_servers(cluster) == {"DOWN"})
                code, body, headers = await asyncio.to_thread(get, history)
                assert code == 503, body
                assert headers["content-type"] == "application/json"
                assert json.loads(body)["code"] == "database_unavailable"
                assert headers["retry-after"] == "5"
                code, body, _ = await asyncio.to_thread(get, f"{cluster.url}/readyz")
                assert code == 503, body
                # The socket stays open and keeps receiving: nothing skipped.
                during = await asyncio.to_thread(publish, "prices:QQQ", {"symbol": "QQQ", "n": 2})

                await asyncio.to_thread(pg.start)
                await eventually(lambda: get(history)[0] == 200)  # the same row, read again
                await eventually(lambda: checked_servers(cluster) == {"UP"})
                after = await asyncio.to_thread(publish, "prices:QQQ", {"symbol": "QQQ", "n": 3})
                frames = [await until(ws, lambda f: f["type"] == "message") for _ in range(3)]
                assert [f["data"]["n"] for f in frames] == [1, 2, 3]
                assert [f["seq"] for f in frames] == [first.seq, during.seq, after.seq]
                assert after.seq == first.seq + 2
            code, body, _ = await asyncio.to_thread(get, f"{cluster.url}/readyz")
            assert code == 200, body
        finally:
            returncode = await asyncio.to_thread(cluster.stop)
        assert returncode == 0
        for name in ("gateway1", "gateway2"):
            log = (tmp_path / "log" / f"{name}.log").read_text()
            assert "Traceback" not in log, log[-3000:]


def test_outage_answer_is_json_for_the_api_and_a_page_for_browsers() -> None:
    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    factory = RequestFactory()
    outage = OperationalError("connection refused")
    api = middleware.process_exception(factory.get("/api/notifications/", HTTP_ACCEPT="text/html,*/*"), outage)
    assert api is not None and api.status_code == 503
    assert json.loads(api.content) == {
        "code": "database_unavailable",
        "detail": "The database is unavailable; retry shortly.",
    }
    page = middleware.process_exception(factory.get("/", HTTP_ACCEPT="text/html"), InterfaceError("closed"))
    assert page is not None and page.status_code == 503 and page["Content-Type"].startswith("text/html")
    assert page["Retry-After"] == "5"
    assert middleware.process_exception(factory.get("/api/x/"), ValueError("not an outage")) is None
