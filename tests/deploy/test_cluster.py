"""The supervised cluster for real: deploy/supervisord.conf under supervisord, two HAProxy
instances from deploy/haproxy.cfg.template on one address in front of two gateways, the
workers, beat and the feed process.

One address serves the whole product, a WebSocket through it gets the feed process's
(simulated) prices and a publication, Chromium shows the dashboard with the simulated
market labelled, every process killed is restarted by the
supervisor, and the stop is clean.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import websockets
from playwright.sync_api import expect, sync_playwright

from realtime_project.cluster import Cluster
from realtime_project.gateway.api import publish
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.gateway.test_scale_out import recv
from tests.support.cluster import cluster_spec, seed_prices

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.e2e, pytest.mark.browser]

PROGRAMS = {"haproxy", "haproxy2", "gateway1", "gateway2", "worker", "prices", "beat", "beat2", "feeds", "feeds2"}


def get(url: str) -> tuple[int, bytes, Message]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=10) as resp:
            return resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers


async def until(ws: Any, predicate: Any, timeout: float = 20) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            frame = await recv(ws, timeout)
            if predicate(frame):
                return frame


def dashboard_shows_simulated_prices(url: str) -> None:
    with sync_playwright() as pw:  # in this thread: Playwright's sync API owns it
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{url}/")
            expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "open")
            expect(page.get_by_test_id("simulated-label")).to_be_visible()
            expect(page.get_by_test_id("price-BTC")).to_have_text(re.compile(r"^\$[0-9,]+\.[0-9]{2}$"))
        finally:
            browser.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_the_supervised_cluster_serves_one_address_restarts_what_dies_and_stops_cleanly(
    tmp_path: Path, redis_settings: Any, redis_url: str, key_prefix: str
) -> None:
    await asyncio.to_thread(seed_prices)
    cluster = Cluster(cluster_spec(tmp_path, redis_url=redis_url, key_prefix=key_prefix))
    await asyncio.to_thread(cluster.start)
    try:
        status = cluster.status()
        assert set(status) == PROGRAMS and {s.state for s in status.values()} == {"RUNNING"}, status
        for balancer in ("haproxy", "haproxy2"):  # two on the one address, each checking
            servers = cluster.balancer_servers(balancer)
            assert servers["gateways/gw1"] == servers["gateways/gw2"] == "UP", (balancer, servers)

        # The whole product at one address: health, dashboard, API, admin.
        code, body, _ = await asyncio.to_thread(get, f"{cluster.url}/healthz")
        assert code == 200 and json.loads(body) == {"status": "ok"}
        code, body, _ = await asyncio.to_thread(get, f"{cluster.url}/")
        assert code == 200 and b"<html" in body.lower()
        code, body, _ = await asyncio.to_thread(get, f"{cluster.url}/api/prices/")
        assert code == 200, body
        code, _, headers = await asyncio.to_thread(get, f"{cluster.url}/admin/")
        assert code == 302 and "/admin/login/" in headers["location"]

        # WebSockets through the balancers, each spreading its own over both gateways
        # (leastconn); the feed process streams the simulated market, labelled as such.
        async with contextlib.AsyncExitStack() as stack:
            sockets = [await stack.enter_async_context(websockets.connect(cluster.ws_url)) for _ in range(10)]
            assert [(await recv(ws))["type"] for ws in sockets] == ["welcome"] * 10
            for balancer in ("haproxy", "haproxy2"):
                sessions = cluster.balancer_sessions(balancer)
                assert abs(sessions["gateways/gw1"] - sessions["gateways/gw2"]) <= 1, (balancer, sessions)
            sessions = cluster.balancer_sessions()
            assert sessions["gateways/gw1"] + sessions["gateways/gw2"] == 10, sessions
            a, b = sockets[:2]
            await a.send(json.dumps({"type": "subscribe", "id": 1, "channel": "prices:btc"}))
            price = await until(a, lambda f: f["type"] == "message" and f["channel"] == "prices:BTC")
            assert price["data"]["source"] == "simulated" and price["data"]["symbol"] == "BTC"
            await b.send(json.dumps({"type": "subscribe", "id": 1, "channel": "prices:QQQ"}))
            assert (await until(b, lambda f: f["type"] != "message"))["type"] == "subscribed"
            await asyncio.to_thread(publish, "prices:QQQ", {"symbol": "QQQ", "note": "through the balancer"})
            frame = await until(b, lambda f: f["type"] == "message" and f["channel"] == "prices:QQQ")
            assert frame["data"] == {"symbol": "QQQ", "note": "through the balancer"}

        # A browser at the one address: the dashboard loads through the balancer, opens its
        # WebSocket there (an allowed origin) and shows the simulated market, labelled.
        await asyncio.to_thread(dashboard_shows_simulated_prices, cluster.url)

        # kill -9 of every process at once (with a worker's pool: each program is a process
        # group of its own): the supervisor brings each one back.
        old = {name: cluster.kill(name) for name in PROGRAMS}
        await asyncio.to_thread(cluster.wait_running, exclude_pids=old.values(), timeout=60)
        await asyncio.to_thread(cluster.wait_ready, 60)
        code, _, _ = await asyncio.to_thread(get, f"{cluster.url}/healthz")
        assert code == 200
        pids = {name: info.pid for name, info in cluster.status().items()}
    finally:
        returncode = await asyncio.to_thread(cluster.stop)
    assert returncode == 0
    assert not any(alive(pid) for pid in pids.values()), pids
    log = (tmp_path / "log" / "supervisord.log").read_text()
    for name in PROGRAMS:
        assert f"stopped: {name} (exit status 0)" in log, log[-3000:]
        assert (tmp_path / "log" / f"{name}.log").stat().st_size > 0
    for name in ("gateway1", "gateway2"):
        assert "Traceback" not in (tmp_path / "log" / f"{name}.log").read_text()
