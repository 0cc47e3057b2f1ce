"""The supervised cluster: two gateways behind two HAProxy instances on one address,
workers, two beats and two feed processes (one of each active by lease, the other a standby).

`deploy/supervisord.conf` describes the processes and `deploy/haproxy.cfg.template` the
balancer (the same file docs/scaling.md shows). This module renders the balancer's
configuration, sets the variables the supervisor configuration reads, and starts
supervisord; `make cluster` and the tests both go through it.

Command line (what the Makefile calls)::

    python -m realtime_project.cluster run [--port 8000]     # foreground; Ctrl-C stops all
    python -m realtime_project.cluster status [--port 8000]  # processes and balancer servers
    python -m realtime_project.cluster haproxy --bind ... --gateway HOST:PORT ...  # render

From Python (tests, benchmarks)::

    spec = ClusterSpec(port=free_port(), run_dir=tmp / "run", log_dir=tmp / "log",
                       env={"REDIS_URL": ..., "DATABASE_URL": ..., "SECRET_KEY": ...})
    with Cluster(spec) as cluster:          # start(): every program RUNNING, both
        cluster.url, cluster.ws_url         # gateways UP in HAProxy, /healthz through it
        cluster.status()                    # {"gateway1": ProcessInfo(state, pid), ...}
        old = cluster.kill("feeds")         # SIGKILL to its process group: supervisord
        cluster.wait_running(["feeds"], exclude_pids={old})   # restarts it
        cluster.balancer_servers()          # {"gateways/gw1": "UP", ...} (both HAProxys' view)
        cluster.balancer_sessions()         # {"gateways/gw1": 1, ...} open sessions (both)
        cluster.balancer_clients("haproxy2")  # client connections one balancer holds
        cluster.ctl("restart", "beat")      # any supervisorctl command
    # leaving the block: stop() sends SIGTERM to supervisord, which stops every program
    # in reverse priority order (feeds and beat, workers, gateways draining, HAProxy) and
    # exits 0; stop() raises if it does not within its timeout.

Two balancers, `haproxy` and `haproxy2`, listen on the same address (HAProxy binds with
SO_REUSEPORT on Linux, so the kernel spreads new connections over both): the one-machine
analogue of two balancers behind a floating address. Killing one drops only the clients it
carried, and they reconnect through the other at once, without waiting for its restart.
Both are rendered from the one template, each with its own stats socket
(`run_dir/haproxy.sock`, `run_dir/haproxy2.sock`).

`Cluster(spec, programs=["haproxy", "gateway1", "gateway2"])` starts only those programs
(a filtered copy of the supervisor configuration in `run_dir`). Programs' environment:
this process's, then `spec.env`, then `spec.program_env[program]` (tests: one gateway's
database through a proxy). Logs: one file per program in `log_dir`. Tests build the
spec with `tests/support/cluster.py` `cluster_spec()` (free ports, the test database, the
test's own Redis prefix, Celery queues and node names).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import xmlrpc.client
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from types import TracebackType
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
HAPROXY_TEMPLATE = DEPLOY / "haproxy.cfg.template"
SUPERVISORD_CONF = DEPLOY / "supervisord.conf"
#: Debian's haproxy (scripts/ensure-haproxy.sh installs it).
HAPROXY = "/usr/sbin/haproxy"
#: The gateways' address behind the balancer (deploy/supervisord.conf binds them there).
GATEWAY_HOST = "127.0.0.1"
#: The balancers' programs in deploy/supervisord.conf: each runs `run_dir/<name>.cfg` and
#: answers on `run_dir/<name>.sock`; both listen on the cluster's one address.
BALANCERS = ("haproxy", "haproxy2")
_BALANCER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


def render_haproxy(
    *,
    bind: str,
    gateways: Sequence[str],
    check_host: str = "localhost",
    stats_socket: str = "/run/haproxy/admin.sock",
    balancer: str = "haproxy",
    balancers: Sequence[str] = (),
) -> str:
    """The configuration of balancer `balancer` (one of `balancers`: default, only it) for
    `gateways` ("host:port" each) from the one template."""
    if not gateways:
        raise ValueError("at least one gateway")
    names = list(balancers) or [balancer]
    if balancer not in names or not all(_BALANCER_NAME.match(name) for name in names):
        raise ValueError(f"balancer names: letters, digits, '_', '.', '-' (got {balancer!r} of {names!r})")
    servers = "\n".join(f"    server gw{i} {address} check" for i, address in enumerate(gateways, 1))
    return Template(HAPROXY_TEMPLATE.read_text()).substitute(
        bind=bind,
        check_host=check_host,
        servers=servers,
        stats_socket=stats_socket,
        balancer=balancer,
        balancers=",".join(names),
    )


@dataclass
class ClusterSpec:
    """Where the cluster listens, where it keeps its files, and its processes' environment."""

    #: The balancer's port: the whole product is at http://host:port/.
    port: int = 8000
    host: str = "127.0.0.1"
    #: The gateways' ports (default: port + 1, port + 2).
    gateway_ports: tuple[int, int] | None = None
    run_dir: Path = ROOT / "var" / "cluster"
    log_dir: Path = ROOT / "var" / "log"
    python: str = sys.executable
    haproxy: str = HAPROXY
    #: Added to this process's environment for every program.
    env: dict[str, str] = field(default_factory=dict)
    #: Added for one program only (tests: one gateway's database through a proxy).
    program_env: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def gateways(self) -> tuple[int, int]:
        return self.gateway_ports or (self.port + 1, self.port + 2)


class ProcessInfo(NamedTuple):
    state: str  # supervisord's: STARTING, RUNNING, BACKOFF, STOPPING, EXITED, FATAL, ...
    pid: int


class ClusterError(RuntimeError):
    pass


class Cluster:
    """supervisord running deploy/supervisord.conf with rendered files (see module doc)."""

    def __init__(self, spec: ClusterSpec, programs: Iterable[str] | None = None) -> None:
        self.spec = spec
        self.programs = list(programs) if programs is not None else None
        self.proc: subprocess.Popen[bytes] | None = None

    # --- addresses and files -------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.spec.host}:{self.spec.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.spec.host}:{self.spec.port}/ws/"

    @property
    def config_path(self) -> Path:
        if self.programs is None and not self.spec.program_env:
            return SUPERVISORD_CONF
        return self.spec.run_dir / "supervisord.conf"

    @property
    def socket_path(self) -> Path:
        return self.spec.run_dir / "supervisor.sock"

    @property
    def balancers(self) -> list[str]:
        """The balancer programs this cluster runs (both, unless `programs` leaves one out)."""
        return [b for b in BALANCERS if self.programs is None or b in self.programs]

    def stats_socket(self, balancer: str) -> Path:
        return self.spec.run_dir / f"{balancer}.sock"

    def log_path(self, program: str) -> Path:
        return self.spec.log_dir / f"{program}.log"

    def environ(self) -> dict[str, str]:
        """What supervisord (and so every program) runs with."""
        spec = self.spec
        env = {"PRICES_QUEUE": "prices", "REALTIME_CLUSTER": "realtime", **os.environ, **spec.env}
        env.update(
            REALTIME_ROOT=str(ROOT),
            REALTIME_PYTHON=spec.python,
            REALTIME_RUN_DIR=str(spec.run_dir),
            REALTIME_LOG_DIR=str(spec.log_dir),
            GATEWAY1_PORT=str(spec.gateways[0]),
            GATEWAY2_PORT=str(spec.gateways[1]),
            HAPROXY=spec.haproxy,
        )
        return env

    def render(self) -> None:
        """Write haproxy.cfg and haproxy2.cfg (and the filtered supervisor configuration) into run_dir."""
        spec = self.spec
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        spec.log_dir.mkdir(parents=True, exist_ok=True)
        for balancer in BALANCERS:  # the same template, a stats socket each
            haproxy = render_haproxy(
                bind=f"{spec.host}:{spec.port}",
                gateways=[f"{GATEWAY_HOST}:{port}" for port in spec.gateways],
                check_host="localhost",
                stats_socket=str(self.stats_socket(balancer)),
                balancer=balancer,
                balancers=BALANCERS,
            )
            (spec.run_dir / f"{balancer}.cfg").write_text(haproxy)
        if self.config_path != SUPERVISORD_CONF:
            conf = SUPERVISORD_CONF.read_text()
            if self.programs is not None:
                conf = filter_programs(conf, self.programs)
            self.config_path.write_text(with_program_env(conf, spec.program_env))

    # --- life cycle ----------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> Cluster:
        """Start supervisord; return once every program runs and the balancer serves."""
        self.render()
        out = (self.spec.log_dir / "supervisord.out").open("ab")
        self.proc = subprocess.Popen(
            [self.spec.python, "-m", "supervisor.supervisord", "-n", "-c", str(self.config_path)],
            cwd=ROOT,
            env=self.environ(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        self.wait_running(timeout=timeout)
        names = self.status()
        if not self.balancers:
            return
        gateways = [f"gateways/gw{i}" for i, name in enumerate(("gateway1", "gateway2"), 1) if name in names]
        while True:
            servers = self._try(self.balancer_servers) or {}  # every balancer agrees: UP
            if all(servers.get(g) == "UP" for g in gateways) and self._healthz():
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"balancer not serving after {timeout}s: {servers}\n{self.tail_logs()}")
            time.sleep(0.2)

    def wait_running(
        self, programs: Iterable[str] | None = None, *, exclude_pids: Iterable[int] = (), timeout: float = 60.0
    ) -> dict[str, ProcessInfo]:
        """Wait until `programs` (default: all) are RUNNING with a pid not in `exclude_pids`."""
        excluded = set(exclude_pids)
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            status = self._try(self.status) or {}
            wanted = list(programs) if programs is not None else list(status)
            if wanted and all(
                (info := status.get(name)) is not None and info.state == "RUNNING" and info.pid not in excluded
                for name in wanted
            ):
                return status
            if time.monotonic() > deadline:
                raise ClusterError(f"not RUNNING after {timeout}s: {status}\n{self.tail_logs()}")
            time.sleep(0.2)

    def stop(self, timeout: float = 90.0) -> int:
        """SIGTERM to supervisord (as Ctrl-C): it stops every program, then exits."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise ClusterError(f"supervisord did not stop within {timeout}s\n{self.tail_logs()}") from None
        return self.proc.returncode

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- inspection ----------------------------------------------------------------------

    def _rpc(self) -> Any:
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, f"unix://{self.socket_path}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def status(self) -> dict[str, ProcessInfo]:
        """Every program's state and pid, as supervisord reports it."""
        return {
            p["name"]: ProcessInfo(p["statename"], int(p["pid"])) for p in self._rpc().supervisor.getAllProcessInfo()
        }

    def pid(self, program: str) -> int:
        return self.status()[program].pid

    def kill(self, program: str, sig: int = signal.SIGKILL) -> int:
        """Send `sig` to the program's process group (a Celery pool included, as a crash
        would take it); returns the pid it had. supervisord restarts it."""
        pid = self.pid(program)
        os.killpg(pid, sig)
        return pid

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `supervisorctl ARGS` against this cluster."""
        return subprocess.run(
            [self.spec.python, "-m", "supervisor.supervisorctl", "-c", str(self.config_path), *args],
            env=self.environ(),
            capture_output=True,
            text=True,
            check=False,
        )

    def balancer_servers(self, balancer: str | None = None) -> dict[str, str]:
        """The balancers' view: {"backend/server": "UP" | "DOWN" | ...} from one balancer's
        stats socket, or (default) from every balancer: a state they all report, else
        theirs joined with "/" ("UP/DOWN" while one has not seen a change yet)."""
        views = [balancer_servers(self.stats_socket(b)) for b in ([balancer] if balancer else self.balancers)]
        return {
            name: "/".join(dict.fromkeys(view.get(name, "?") for view in views))
            for name in dict.fromkeys(name for view in views for name in view)
        }

    def balancer_sessions(self, balancer: str | None = None) -> dict[str, int]:
        """Current sessions (an open WebSocket is one) per "backend/server", summed over
        the balancers (default) or of one."""
        sessions: dict[str, int] = {}
        for b in [balancer] if balancer else self.balancers:
            for r in balancer_stats(self.stats_socket(b)):
                if r["svname"] not in ("FRONTEND", "BACKEND"):
                    key = f"{r['pxname']}/{r['svname']}"
                    sessions[key] = sessions.get(key, 0) + int(r["scur"] or 0)
        return sessions

    def balancer_clients(self, balancer: str) -> int:
        """Client connections one balancer holds now (its frontend's current sessions)."""
        rows = balancer_stats(self.stats_socket(balancer))
        return sum(int(r["scur"] or 0) for r in rows if r["svname"] == "FRONTEND")

    def tail_logs(self, lines: int = 30) -> str:
        parts = []
        for path in sorted(self.spec.log_dir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(parts)

    def _healthz(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise ClusterError(f"supervisord exited with {self.proc.returncode}\n{self.tail_logs()}")

    @staticmethod
    def _try(fn: Any) -> Any:
        try:
            return fn()
        except (OSError, xmlrpc.client.Error):
            return None


def balancer_stats(stats_socket: Path) -> list[dict[str, str]]:
    """HAProxy's `show stat` rows (pxname, svname, status, scur = current sessions, ...)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(2)
        sock.connect(str(stats_socket))
        sock.sendall(b"show stat\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    text = b"".join(chunks).decode().lstrip("# ")
    return list(csv.DictReader(io.StringIO(text)))


def balancer_servers(stats_socket: Path) -> dict[str, str]:
    return {
        f"{row['pxname']}/{row['svname']}": row["status"]
        for row in balancer_stats(stats_socket)
        if row["svname"] not in ("FRONTEND", "BACKEND")
    }


def filter_programs(conf: str, programs: Iterable[str]) -> str:
    """The supervisor configuration without the [program:x] sections not in `programs`."""
    keep = set(programs)
    out: list[str] = []
    skipping = False
    for line in conf.splitlines(keepends=True):
        if line.startswith("["):
            section = line.strip()[1:-1]
            skipping = section.startswith("program:") and section.split(":", 1)[1] not in keep
        if not skipping:
            out.append(line)
    return "".join(out)


def with_program_env(conf: str, program_env: Mapping[str, Mapping[str, str]]) -> str:
    """The supervisor configuration with an `environment=` line for each program in
    `program_env` (added to what it inherits from supervisord)."""
    out: list[str] = []
    for line in conf.splitlines(keepends=True):
        out.append(line)
        if line.startswith("[program:"):
            env = program_env.get(line.strip()[len("[program:") : -1])
            if env:
                pairs = ",".join(f'{key}="{value.replace("%", "%%")}"' for key, value in env.items())
                out.append(f"environment={pairs}\n")
    return "".join(out)


# --- make cluster ----------------------------------------------------------------------------

#: The offline-friendly defaults of `make cluster` (never of a production deployment):
#: the simulated market, the same switch as embedded mode, instead of venues this machine
#: may not reach. `PRICES_LIVE_SOURCES=1 PRICES_SIMULATED=0 make cluster` for live prices.
OFFLINE_DEFAULTS = {"PRICES_SIMULATED": "1", "PRICES_LIVE_SOURCES": "0"}


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def cluster_env(environ: Mapping[str, str], port: int, host: str) -> dict[str, str]:
    """The environment `make cluster` adds: offline prices unless asked otherwise, and
    the balancer's address as the browsers' origin."""
    env = {k: v for k, v in OFFLINE_DEFAULTS.items() if not environ.get(k)}
    merged = {**environ, **env}
    if not _truthy(merged.get("PRICES_LIVE_SOURCES")) and not environ.get("PRICES_MIN_SOURCES"):
        env["PRICES_MIN_SOURCES"] = "1"  # one simulated source is the whole market here
    if not environ.get("REALTIME_ALLOWED_ORIGINS"):
        env["REALTIME_ALLOWED_ORIGINS"] = f"http://{host}:{port},http://localhost:{port},http://127.0.0.1:{port}"
    return env


def banner(spec: ClusterSpec, env: Mapping[str, str]) -> str:
    simulated, live = _truthy(env.get("PRICES_SIMULATED")), _truthy(env.get("PRICES_LIVE_SOURCES"))
    if simulated and not live:
        prices = (
            "SIMULATED market (offline default of make cluster; labelled 'simulated' on the dashboard).\n"
            "        Live venues: PRICES_LIVE_SOURCES=1 PRICES_SIMULATED=0 make cluster"
        )
    elif live and not simulated:
        prices = "live venues (PRICES_LIVE_SOURCES=1)"
    else:
        prices = f"PRICES_SIMULATED={int(simulated)} PRICES_LIVE_SOURCES={int(live)}"
    g1, g2 = spec.gateways
    return "\n".join(
        [
            f"Cluster: http://{spec.host}:{spec.port}/  (dashboard, API /api/, admin /admin/, WebSocket /ws/)",
            f"  HAProxy x2 (haproxy, haproxy2: both on that address) -> gateways on {GATEWAY_HOST}:{g1} and"
            f" {GATEWAY_HOST}:{g2} (leastconn, checks /readyz)",
            "  supervisord: gateway1 gateway2 worker prices beat beat2 feeds feeds2 haproxy haproxy2,"
            " each restarted on exit",
            "  (beat and feeds: one of each active by a lease in Redis, the other a standby)",
            f"  Prices: {prices}",
            f"  Logs: {spec.log_dir}/<program>.log   Status: make cluster-status   Stop: Ctrl-C",
        ]
    )


def _run(args: argparse.Namespace) -> int:
    spec = ClusterSpec(port=args.port, host=args.host)
    extra = cluster_env(os.environ, spec.port, spec.host)
    spec.env.update(extra)
    cluster = Cluster(spec)
    cluster.render()
    print(banner(spec, {**os.environ, **extra}), flush=True)
    # supervisord takes this process's place: Ctrl-C reaches it, it stops every program.
    os.execve(
        spec.python, [spec.python, "-m", "supervisor.supervisord", "-c", str(cluster.config_path)], cluster.environ()
    )


def _status(args: argparse.Namespace) -> int:
    cluster = Cluster(ClusterSpec(port=args.port, host=args.host))
    if not cluster.socket_path.exists():
        print(f"no cluster running (no {cluster.socket_path}); start one with make cluster")
        return 3
    result = cluster.ctl("status")
    print(result.stdout, end="")
    for balancer in cluster.balancers:
        try:
            servers = cluster.balancer_servers(balancer)
        except OSError as exc:
            print(f"{balancer}: stats socket unavailable ({exc})")
        else:
            print(f"{balancer}: " + "  ".join(f"{name} {state}" for name, state in sorted(servers.items())))
    # supervisorctl: 0 all running, 3 some not.
    return result.returncode


def _haproxy(args: argparse.Namespace) -> int:
    print(
        render_haproxy(
            bind=args.bind,
            gateways=args.gateway,
            check_host=args.check_host,
            stats_socket=args.stats_socket,
            balancer=args.name,
            balancers=args.balancers.split(",") if args.balancers else (),
        ),
        end="",
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m realtime_project.cluster", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn in (("run", _run), ("status", _status)):
        p = sub.add_parser(name)
        p.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
        p.add_argument("--host", default=os.environ.get("HOST") or "127.0.0.1")
        p.set_defaults(fn=fn)
    p = sub.add_parser("haproxy", help="render deploy/haproxy.cfg.template")
    p.add_argument("--bind", required=True, help="e.g. ':443 ssl crt /etc/haproxy/site.pem'")
    p.add_argument("--gateway", action="append", required=True, help="host:port, once per gateway")
    p.add_argument("--check-host", default="localhost", help="a Host in the gateways' ALLOWED_HOSTS")
    p.add_argument("--stats-socket", default="/run/haproxy/admin.sock")
    p.add_argument("--name", default="haproxy", help="this balancer's name (X-Realtime-Balancer)")
    p.add_argument("--balancers", default="", help="every balancer's name, comma-separated (default: --name)")
    p.set_defaults(fn=_haproxy)
    args = parser.parse_args(argv)
    if args.command != "haproxy" and shutil.which(HAPROXY) is None and not Path(HAPROXY).exists():
        print(f"{HAPROXY} missing: run scripts/ensure-haproxy.sh", file=sys.stderr)
        return 1
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
