"""The sync publish API as Celery workers use it: one long-lived loop, no leaks.

channels-redis pitfalls the API must avoid: a new Redis connection per call
(django/channels_redis#125) and breaking once an event loop was closed (#332).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from typing import Any

import pytest

from realtime_project.gateway.api import publish, publish_on_commit, send_to_user
from realtime_project.gateway.conf import gateway_settings
from realtime_project.logging import JsonFormatter

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def open_sockets() -> int:
    """Sockets this process holds (Redis connections among them)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            continue
    return count


def test_many_sync_publishes_reuse_connections(redis_settings: Any, redis_url: str) -> None:
    publish("prices:BTC", {"warm": True})
    before = open_sockets()
    for i in range(200):
        publish("prices:BTC", {"i": i})
    after = open_sockets()
    assert after - before <= 2, (before, after)
    # And every one of them got its own seq.
    assert publish("prices:BTC", {"last": True}).seq == 202


def test_publish_survives_closed_event_loops_and_threads(redis_settings: Any) -> None:
    first = publish("prices:ETH", {"n": 1})

    async def some_async_work() -> None:
        await asyncio.sleep(0)

    asyncio.run(some_async_work())  # a loop created and closed in this thread (#332)
    second = publish("prices:ETH", {"n": 2})
    results: list[int] = []

    def worker() -> None:
        results.append(publish("prices:ETH", {"n": 3}).seq)
        asyncio.run(some_async_work())
        results.append(publish("prices:ETH", {"n": 4}).seq)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert second.seq == first.seq + 1
    assert sorted(results) == list(range(second.seq + 1, second.seq + 7))


def test_publish_from_a_forked_child(redis_settings: Any) -> None:
    publish("prices:SOL", {"parent": True})  # the parent's publisher loop exists
    pid = os.fork()
    if pid == 0:  # child: like a Celery prefork worker
        try:
            publish("prices:SOL", {"child": True})
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert publish("prices:SOL", {"parent": "again"}).seq == 3


def test_publish_from_async_code_is_refused_with_a_clear_error(redis_settings: Any) -> None:
    async def misuse() -> None:
        publish("prices:BTC", {})

    with pytest.raises(RuntimeError, match="use await apublish"):
        asyncio.run(misuse())


def test_publish_validates_at_the_call_site(redis_settings: Any) -> None:
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        publish("prices:BTC", {"when": object()})
    with pytest.raises(ValueError, match="invalid channel"):
        publish("Prices:BTC", {})
    with pytest.raises(TypeError):
        send_to_user(1, {1j})


def test_publish_on_commit_only_after_commit(redis_settings: Any) -> None:
    from django.db import transaction

    from realtime_project.gateway.runtime import get_history

    async def position() -> int:
        return (await get_history().position("prices:DOGE")).seq

    with pytest.raises(RuntimeError), transaction.atomic():
        publish_on_commit("prices:DOGE", {"rolled": "back"})
        raise RuntimeError("abort the transaction")
    assert asyncio.run(position()) == 0
    with transaction.atomic():
        publish_on_commit("prices:DOGE", {"kept": True})
        assert asyncio.run(position()) == 0  # not before the commit
    assert asyncio.run(position()) == 1
    with pytest.raises(TypeError):  # bad payloads fail now, not after the commit
        publish_on_commit("prices:DOGE", {"x": object()})


def test_json_log_lines() -> None:
    record = logging.LogRecord("realtime.hub", logging.WARNING, __file__, 1, "gap of %d", (3,), None)
    record.channel = "prices:BTC"
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "WARNING" and line["logger"] == "realtime.hub"
    assert line["msg"] == "gap of 3" and line["channel"] == "prices:BTC"
    assert gateway_settings().key_prefix  # settings resolve in this process


def test_publishers_import_neither_the_hub_nor_a_server() -> None:
    """A Celery worker imports the publish API; it must not pull in the hub or uvicorn."""
    import subprocess
    import sys

    code = (
        "import django, sys; django.setup(); import realtime_project.gateway.api; "
        "loaded = [m for m in sys.modules if m.startswith(('uvicorn', 'realtime_project.gateway.hub'))]; "
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "realtime_project.settings"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
