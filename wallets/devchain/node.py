"""`AnvilNode`: a local anvil process on 127.0.0.1 (chain id 31337) that never outlives the server."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from django.conf import settings
from web3 import HTTPProvider, Web3

logger = logging.getLogger("wallets.devchain")

#: anvil's (and hardhat's) default chain id; the wallets defaults know it as a local chain.
DEV_CHAIN_ID = 31337
#: Seconds anvil gets to answer eth_chainId (it usually does in ~0.3 s; node.js starts first).
STARTUP_TIMEOUT = 20.0
#: Seconds between SIGTERM and SIGKILL when stopping it.
STOP_TIMEOUT = 5.0
#: How to install the pinned anvil (the same package the wallets tests use).
INSTALL_HINT = "cd contracts && npm ci"
#: Linux prctl(2) option: signal the child when the thread that started it dies.
PR_SET_PDEATHSIG = 1


class NodeUnavailable(Exception):
    """anvil could not be started: no executable, no node.js, or it exited at once."""


def anvil_executable(configured: str = "") -> Path:
    """The configured anvil, else the one of the pinned npm package in contracts/node_modules.

    npm installs this platform's binary as an optional dependency of `@foundry-rs/anvil`
    (e.g. `@foundry-rs/anvil-linux-amd64`); it is run directly rather than through the
    node.js wrapper in `.bin/`, so there is one process to stop and no node.js needed.
    """
    if configured:
        return Path(configured)
    modules = Path(settings.BASE_DIR) / "contracts" / "node_modules"
    for binary in sorted(modules.glob("@foundry-rs/anvil-*/bin/anvil")):
        if os.access(binary, os.X_OK):
            return binary
    return modules / ".bin" / "anvil"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_or_free(preferred: int) -> int:
    """`preferred` when nothing listens on it (anvil's usual 8545), else any free port."""
    if preferred > 0:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", preferred))
                return preferred
            except OSError:
                logger.info("dev chain: port %d is taken; using a free one", preferred)
    return free_port()


def dev_web3(url: str, timeout: float = 10.0) -> Web3:
    """A web3 client of the local node (no proxy from the environment: it is on 127.0.0.1)."""
    session = requests.Session()
    session.trust_env = False
    return Web3(HTTPProvider(url, request_kwargs={"timeout": timeout}, session=session))


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Linux: SIGTERM the node when the server dies, even by SIGKILL (no orphaned anvil).

    The signal follows the *thread* that started the child, so start it from the main thread.
    """
    import ctypes

    parent = os.getppid()
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the server died between fork and prctl
        os._exit(1)


class AnvilNode:
    """`anvil --host 127.0.0.1 --port P --chain-id 31337 --block-time B` in its own process group.

    Its own group: Ctrl-C in the terminal reaches the server, which drains its clients and
    then stops the node (a node dying first would only make the last scans fail). `stop()`
    signals the whole group: the binary, or the npm wrapper (node.js) and the binary it
    spawned when only `.bin/anvil` is there.
    """

    def __init__(self, *, executable: Path, port: int, block_time: float, chain_id: int = DEV_CHAIN_ID) -> None:
        self.executable = executable
        self.port = port
        self.block_time = block_time
        self.chain_id = chain_id
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_path: str | None = None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self, timeout: float = STARTUP_TIMEOUT) -> None:
        if not self.executable.exists():
            raise NodeUnavailable(f"anvil not found at {self.executable}")
        command = [
            str(self.executable),
            *("--host", "127.0.0.1", "--port", str(self.port)),
            *("--chain-id", str(self.chain_id), "--block-time", f"{self.block_time:g}"),
            "--silent",
        ]
        with tempfile.NamedTemporaryFile("wb", prefix="anvil-", suffix=".log", delete=False) as log:
            self._log_path = log.name
            try:
                self.proc = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                )
            except OSError as exc:  # not executable, or node.js missing for the npm wrapper
                self.stop()
                raise NodeUnavailable(f"cannot run {self.executable}: {exc}") from None
        w3 = dev_web3(self.url, timeout=1.0)
        deadline = time.monotonic() + timeout
        served: int | None = None
        while served is None:
            try:
                served = int(w3.eth.chain_id)
            except Exception:  # not listening yet (connection refused), or still booting
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    output = self.output()
                    code = self.proc.returncode
                    self.stop()
                    why = "did not answer" if code is None else f"exited with {code}"
                    said = output[-500:].strip() or "no output"
                    raise NodeUnavailable(f"anvil {why} on {self.url}: {said}") from None
                time.sleep(0.05)
        if served != self.chain_id:  # another node took the port between our check and anvil's bind
            self.stop()
            raise NodeUnavailable(f"{self.url} serves chain {served}, not {self.chain_id}")

    def output(self) -> str:
        """What anvil printed (errors only: it runs with --silent)."""
        if self._log_path is None:
            return ""
        try:
            return Path(self._log_path).read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Stop the node's whole process group (idempotent); SIGKILL after STOP_TIMEOUT.

        The group holds the npm wrapper (node.js) and the anvil binary it spawned: waiting
        for the wrapper alone could leave the binary running for a moment.
        """
        proc = self.proc
        if proc is not None:
            _signal_group(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            while _group_alive(proc) and time.monotonic() < deadline:
                time.sleep(0.02)
            if _group_alive(proc):
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(STOP_TIMEOUT)
        if self._log_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._log_path)
            self._log_path = None


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(proc: subprocess.Popen[bytes]) -> bool:
    """Whether any process of the node's group still runs (its leader reaped as it exits)."""
    proc.poll()
    try:
        os.killpg(proc.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
