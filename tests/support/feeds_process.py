"""A real `manage.py feeds` process for end-to-end tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.servers import ROOT, server_env


class FeedsProcess:
    """`python manage.py feeds [args]` with the test database and (optionally) Redis."""

    def __init__(self, *, redis: str | None = None, key_prefix: str = "", extra: dict[str, str] | None = None,
                 args: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.env = server_env(redis=redis, key_prefix=key_prefix, extra=extra)
        self.args = args
        self.log = tempfile.NamedTemporaryFile("w+", prefix="feeds-", suffix=".log", delete=False)  # noqa: SIM115  (kept open for the process lifetime)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> FeedsProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "feeds", *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        return self

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def read_log(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")
