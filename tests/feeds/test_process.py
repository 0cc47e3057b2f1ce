"""The feed runner in real processes: `manage.py feeds` beside a gateway, and inside
`manage.py serve` in embedded mode. Health reaches /readyz; signals stop it cleanly."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import ops_request

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SAMPLE = {
    "FEEDS_EXTRA_MODULES": "tests.support.sample_feeds",
    # Quick restarts and reports: the test waits for counts, never for durations.
    "FEEDS_BACKOFF_BASE": "0.01",
    "FEEDS_BACKOFF_CAP": "0.05",
    "FEEDS_HEALTH_INTERVAL": "0.2",
    # The apps' own feeds (prices streams) are tested in their apps.
    "FEEDS_ONLY": "sample.steady,sample.flaky",
}


def readyz(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(ops_request(f"{url}/readyz"), timeout=5) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:  # 503 still carries the report
        return json.loads(exc.read())  # type: ignore[no-any-return]


def eventually(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what} never happened; last: {last!r}")


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    return tmp_path


@pytest.mark.redis
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_feed_process_restarts_a_failing_feed_reports_to_readyz_and_stops_on_a_signal(
    sig: int, live_server_factory: Any, feeds_process: Any, redis_url: str, key_prefix: str, marks: Path
) -> None:
    gateway = live_server_factory(server="uvicorn", redis=redis_url, key_prefix=key_prefix)
    proc = feeds_process(redis=redis_url, key_prefix=key_prefix, extra={**SAMPLE, "SAMPLE_FEEDS_DIR": str(marks)})

    def restarted() -> Any:
        feeds = readyz(gateway.http_url)["apps"]["feeds"]
        flaky = feeds["feeds"].get("sample.flaky", {})
        return feeds if feeds["running"] and flaky.get("restarts", 0) >= 3 else None

    report = eventually(restarted, "three restarts of the flaky feed in /readyz")
    steady, flaky = report["feeds"]["sample.steady"], report["feeds"]["sample.flaky"]
    assert steady["ok"] is True and steady["state"] == "running" and steady["starts"] == 1
    assert steady["health"] == {"ok": True, "connected": True, "runs": 1}
    assert flaky["ok"] is False and flaky["failures"] >= 3 and flaky["last_error"].startswith("RuntimeError: boom")
    assert report["ok"] is False  # one feed is failing
    assert report["instance"].endswith(f":{proc.proc.pid}")
    # The failing feed never disturbed the steady one.
    assert (marks / "steady").read_text() == "started\n"
    assert (marks / "flaky").read_text().count("started") >= 3

    proc.signal(sig)
    assert proc.wait() == 0, proc.read_log()
    assert (marks / "steady").read_text() == "started\nstopped\n"  # cleaned up on the way out
    assert readyz(gateway.http_url)["apps"]["feeds"]["running"] is False  # it said goodbye
    log = proc.read_log()
    assert "Feeds stopped." in log and "RuntimeError: boom 1" in log


@pytest.mark.parametrize("server_kind", ["uvicorn", "daphne"])
def test_embedded_server_runs_the_feed_runner_in_process(
    server_kind: str, live_server_factory: Any, marks: Path
) -> None:
    server = live_server_factory(
        server=server_kind,
        extra={**SAMPLE, "SAMPLE_FEEDS": "steady", "FEEDS_ONLY": "sample.steady", "SAMPLE_FEEDS_DIR": str(marks)},
        args=("--feeds", "on"),
    )
    report = eventually(
        lambda: (r := readyz(server.http_url)["apps"]["feeds"])["running"] and r,
        "the embedded runner's report",
    )
    assert report["feeds"]["sample.steady"]["state"] == "running"
    assert report["instance"].endswith(f":{server.proc.pid}")
    server.signal(signal.SIGTERM)
    assert server.wait() == 0
    assert (marks / "steady").read_text() == "started\nstopped\n"


def test_feeds_command_lists_feeds_and_refuses_unknown_names(feeds_process: Any) -> None:
    listing = feeds_process(extra=SAMPLE, args=("--list",))
    assert listing.wait() == 0
    assert "sample.steady\nsample.flaky\n" in listing.read_log()
    wrong = feeds_process(extra=SAMPLE, args=("--only", "sample.nope"))
    assert wrong.wait() != 0
    assert "no such feeds: ['sample.nope']" in wrong.read_log()
