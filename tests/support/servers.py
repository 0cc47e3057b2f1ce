"""Real server processes for end-to-end tests (daphne or uvicorn via `manage.py serve`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_database_url() -> str:
    """The URL of the test database pytest-django created (for child processes)."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    user = s.get("USER") or "postgres"
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{s['NAME']}"


def production_env() -> dict[str, str]:
    """What a production-mode process of the tests needs beyond REDIS_URL: the test
    process's own (strong) secret key, so tickets and session cookies made here are valid
    there, and plain HTTP (the tests talk to it without a TLS-terminating proxy)."""
    from django.conf import settings

    return {"SECRET_KEY": settings.SECRET_KEY, "SECURE_SSL_REDIRECT": "0"}


#: The ops token of the test servers (production mode hides /readyz details and /metrics
#: from everyone else): `ops_request(url)` sends it.
OPS_TOKEN = "test-ops-token"


def ops_request(url: str) -> urllib.request.Request:
    """A GET of /readyz or /metrics as an operator (the test servers' ops token)."""
    return urllib.request.Request(url, headers={"Authorization": f"Bearer {OPS_TOKEN}"})


def server_env(
    *,
    redis: str | None = None,
    key_prefix: str = "",
    heartbeat_interval: float | None = None,
    heartbeat_timeout: float | None = None,
    extra: dict[str, str] | None = None,
    **_: Any,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env["DATABASE_URL"] = test_database_url()
    env.update(production_env())
    env["DJANGO_SETTINGS_MODULE"] = "realtime_project.settings"
    env["REALTIME_OPS_TOKEN"] = OPS_TOKEN
    env["PYTHONUNBUFFERED"] = "1"
    env["LOG_FORMAT"] = "text"
    env["EMBEDDED_SCHEDULER"] = "off"
    env["EMBEDDED_FEEDS"] = "off"  # tests that want the in-process feed runner turn it on
    env["WALLETS_DEV_CHAIN"] = "0"  # no anvil per test server (tests/wallets/test_devchain.py starts one)
    if redis:
        env["REDIS_URL"] = redis
    if key_prefix:
        env["REALTIME_KEY_PREFIX"] = key_prefix
        env["CHANNEL_PREFIX"] = key_prefix
        env["CACHE_PREFIX"] = key_prefix
    if heartbeat_interval is not None:
        env["REALTIME_HEARTBEAT_INTERVAL"] = str(heartbeat_interval)
    if heartbeat_timeout is not None:
        env["REALTIME_HEARTBEAT_TIMEOUT"] = str(heartbeat_timeout)
    env.update(extra or {})
    return env


class ServerProcess:
    """`python manage.py serve` on a free port; waits for /healthz."""

    def __init__(
        self, env: dict[str, str], server: str = "daphne", port: int | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.env = env
        self.server = server
        self.args = args
        self.port = port or free_port()
        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"server-{self.port}-", suffix=".log", delete=False)  # noqa: SIM115  (kept open for the process lifetime)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    def start(self, timeout: float = 30.0) -> None:
        self.env["PORT"] = str(self.port)
        # Production mode accepts exactly the listed browser origins: the tests' browsers
        # open the pages at this address over plain HTTP.
        self.env.setdefault("REALTIME_ALLOWED_ORIGINS", f"http://127.0.0.1:{self.port},http://localhost:{self.port}")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--server", self.server, "--port", str(self.port), *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.read_log()}")
            try:
                with urllib.request.urlopen(f"{self.http_url}/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not become healthy in {timeout}s:\n{self.read_log()}")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def read_log(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def assert_clean_log(self) -> None:
        text = self.read_log()
        assert "Traceback" not in text, f"server log has a traceback:\n{text[-4000:]}"
