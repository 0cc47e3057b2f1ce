"""A real Celery worker process for end-to-end tests, on its own queue and key prefixes."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from celery import Celery

from tests.support.servers import ROOT, production_env, test_database_url


class CeleryWorker:
    """`celery worker --pool=solo` sharing the test database and Redis prefix.

    Each worker listens on a queue of its own, never the default one other runs share.
    `send()` uses a sender app that is not the current app (tests' shared tasks stay on
    the project's eager app) and an explicit connection (no producer from kombu's
    process-wide pools, which another test may have closed).
    """

    def __init__(self, *, redis_url: str, key_prefix: str, name: str, extra_env: dict[str, str] | None = None) -> None:
        self.queue = f"{name}-{secrets.token_hex(4)}"
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update(
            REDIS_URL=redis_url,
            CELERY_QUEUE=self.queue,
            DATABASE_URL=test_database_url(),
            REALTIME_KEY_PREFIX=key_prefix,
            CHANNEL_PREFIX=key_prefix,
            CACHE_PREFIX=key_prefix,
            DJANGO_SETTINGS_MODULE="realtime_project.settings",
            LOG_FORMAT="text",
            PYTHONUNBUFFERED="1",
            **production_env(),
            **(extra_env or {}),
        )
        fd, name_ = tempfile.mkstemp(prefix=f"{name}-worker-", suffix=".log")
        os.close(fd)
        self.log_path = Path(name_)
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "realtime_project", "worker", "-Q", self.queue, "--pool=solo",
             "-l", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{self.queue}@%h"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.sender = Celery(f"{name}-sender", broker=redis_url, set_as_current=False)
        deadline = time.monotonic() + 60
        while "ready." not in self.read_log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"celery worker did not start:\n{self.read_log()[-3000:]}")
            time.sleep(0.1)

    def send(self, task: str, *args: Any) -> None:
        with self.sender.connection_for_write() as connection:
            self.sender.send_task(task, args=list(args), queue=self.queue, connection=connection)

    def read_log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.sender.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()

    def assert_clean_log(self) -> None:
        text = self.read_log()
        assert "Traceback" not in text, text[-4000:]
