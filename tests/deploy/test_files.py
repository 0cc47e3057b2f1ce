"""deploy/: the balancer template (the one docs/scaling.md shows, valid for HAProxy), the
systemd units (valid for systemd, the same processes and commands as the supervisor
configuration), the environment example, and `make cluster`'s offline defaults."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from realtime_project.cluster import (
    DEPLOY,
    HAPROXY,
    HAPROXY_TEMPLATE,
    ROOT,
    SUPERVISORD_CONF,
    ClusterSpec,
    banner,
    cluster_env,
    filter_programs,
    render_haproxy,
    with_program_env,
)

UNITS = DEPLOY / "systemd"


def test_the_docs_show_the_template_itself() -> None:
    text = (ROOT / "docs" / "scaling.md").read_text()
    block = re.search(r"<!-- deploy/haproxy.cfg.template -->\n```haproxy\n(.*?)```", text, re.S)
    assert block, "docs/scaling.md has no deploy/haproxy.cfg.template block"
    assert block.group(1) == HAPROXY_TEMPLATE.read_text()


@pytest.mark.parametrize(
    "bind", ["127.0.0.1:8000", ":443 ssl crt /etc/haproxy/site.pem"], ids=["make-cluster", "production-tls"]
)
def test_rendered_configuration_is_valid_for_haproxy(tmp_path: Path, bind: str) -> None:
    if "ssl" in bind:  # a self-signed certificate, as a deployment would have a real one
        pem = tmp_path / "site.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=rt.example.com",
             "-keyout", str(pem), "-out", str(pem)],
            check=True, capture_output=True,
        )  # fmt: skip
        bind = bind.replace("/etc/haproxy/site.pem", str(pem))
    config = render_haproxy(
        bind=bind,
        gateways=["10.0.0.11:8000", "10.0.0.12:8000", "10.0.0.13:8000"],
        check_host="rt.example.com",
        stats_socket=str(tmp_path / "admin.sock"),
        balancer="lb2",
        balancers=["lb1", "lb2"],
    )
    assert config.count("server gw3 10.0.0.13:8000 check") == 2  # checked on /readyz, and alive
    assert "set-header X-Realtime-Balancer lb2\n" in config
    assert "set-header X-Realtime-Balancers lb1,lb2\n" in config
    assert "balance leastconn" in config and "uri /readyz" in config and "$" not in config
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    result = subprocess.run([HAPROXY, "-c", "-f", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_render_needs_a_gateway_and_plain_balancer_names() -> None:
    with pytest.raises(ValueError):
        render_haproxy(bind=":80", gateways=[])
    with pytest.raises(ValueError):  # a name that would break the header line
        render_haproxy(bind=":80", gateways=["10.0.0.11:8000"], balancer="a b")
    with pytest.raises(ValueError):  # this balancer must be one of them
        render_haproxy(bind=":80", gateways=["10.0.0.11:8000"], balancer="c", balancers=["a", "b"])


def supervisor_programs() -> dict[str, str]:
    """program name -> command, from deploy/supervisord.conf."""
    programs: dict[str, str] = {}
    section = ""
    for line in SUPERVISORD_CONF.read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif line.startswith("command=") and section.startswith("program:"):
            programs[section.split(":", 1)[1]] = line.split("=", 1)[1]
    return programs


def unit_sections(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file: section -> key -> values (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def normalise(command: str) -> list[str]:
    """A command without what differs between the two launchers (paths, ports, node names)."""
    for pattern, replacement in (
        (r"%\(ENV_REALTIME_PYTHON\)s|/opt/realtime/\.venv/bin/python", "PYTHON"),
        (r"%\(ENV_GATEWAY\d_PORT\)s|%i", "PORT"),
        (r"%\(ENV_PRICES_QUEUE\)s|\$\{PRICES_QUEUE\}", "QUEUE"),
    ):
        command = re.sub(pattern, replacement, command)
    words = shlex.split(command)
    if "-n" in words:  # Celery node names: per cluster there, per host here
        i = words.index("-n")
        del words[i : i + 2]
    return words


def test_systemd_units_run_the_supervisor_configurations_processes() -> None:
    services = sorted(UNITS.glob("*.service"))
    assert {p.name for p in services} == {
        "realtime-gateway@.service",
        "realtime-worker.service",
        "realtime-prices.service",
        "realtime-beat.service",
        "realtime-feeds.service",
    }
    target = unit_sections(UNITS / "realtime.target")
    wanted = " ".join(target["Unit"]["Wants"]).split()
    commands: dict[str, list[str]] = {}
    for path in services:
        unit = unit_sections(path)
        service = unit["Service"]
        assert service["Restart"] == ["always"], path.name  # restarted on any exit
        assert unit["Unit"]["StartLimitIntervalSec"] == ["0"], path.name  # never gives up
        assert service["EnvironmentFile"] == ["/etc/realtime/env"] and service["WorkingDirectory"] == ["/opt/realtime"]
        assert unit["Unit"]["PartOf"] == ["realtime.target"] and unit["Install"]["WantedBy"] == ["realtime.target"]
        assert service["KillSignal"] == ["SIGTERM"]  # the gateway drains, workers shut down warm
        if "@" not in path.name:
            assert path.name in wanted, path.name
        commands[path.name.split(".")[0]] = normalise(service["ExecStart"][0])
    programs = {name: normalise(command) for name, command in supervisor_programs().items()}
    assert programs.pop("haproxy")[0].endswith("HAPROXY)s")
    assert programs.pop("haproxy2")[0].endswith("HAPROXY)s")  # the second balancer
    assert programs.pop("gateway1") == programs.pop("gateway2") == commands.pop("realtime-gateway@")
    # The standbys run the same command (a second host runs the same unit).
    assert programs.pop("feeds2") == programs["feeds"] and programs.pop("beat2") == programs["beat"]
    assert {f"realtime-{name}": command for name, command in programs.items()} == commands


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze (Debian's systemd package) is needed to verify deploy/systemd"
    # As installed, with this checkout as /opt/realtime (verify checks the executables).
    for path in UNITS.iterdir():
        text = path.read_text().replace("/opt/realtime", str(ROOT))
        text = text.replace("/etc/realtime/env", str(DEPLOY / "env.example"))
        (tmp_path / path.name).write_text(text)
    (tmp_path / "realtime-gateway@8001.service").write_text((tmp_path / "realtime-gateway@.service").read_text())
    units = [
        str(tmp_path / name)
        for name in sorted(p.name for p in tmp_path.iterdir())
        if name != "realtime-gateway@.service"
    ]
    result = subprocess.run([analyze, "verify", "--man=no", *units], capture_output=True, text=True, check=False)
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        # Newer systemd's backoff keys; older versions ignore them (the units say so).
        if not re.search(r"Unknown key '(RestartSteps|RestartMaxDelaySec)'", line)
    ]
    assert result.returncode == 0 and not problems, "\n".join(problems)


def test_env_example_is_the_documented_production_environment() -> None:
    from tests.security.test_production import documented_production_env

    example = dict(
        line.split("=", 1) for line in (DEPLOY / "env.example").read_text().splitlines() if line and line[0] != "#"
    )
    assert documented_production_env().items() <= example.items()
    # Production keeps the live venues: the offline defaults are make cluster's alone.
    assert "PRICES_SIMULATED" not in example and "PRICES_LIVE_SOURCES" not in example


def test_make_cluster_defaults_to_the_labelled_simulated_market_and_says_so() -> None:
    env = cluster_env({}, 8000, "127.0.0.1")
    assert env["PRICES_SIMULATED"] == "1" and env["PRICES_LIVE_SOURCES"] == "0" and env["PRICES_MIN_SOURCES"] == "1"
    assert "http://127.0.0.1:8000" in env["REALTIME_ALLOWED_ORIGINS"].split(",")
    text = banner(ClusterSpec(port=8000), env)
    assert "http://127.0.0.1:8000/" in text and "SIMULATED" in text
    # Asking for the live venues is honoured, and the banner says that instead.
    live = {"PRICES_LIVE_SOURCES": "1", "PRICES_SIMULATED": "0"}
    env = cluster_env(live, 8000, "127.0.0.1")
    assert "PRICES_SIMULATED" not in env and "PRICES_MIN_SOURCES" not in env
    assert "live venues" in banner(ClusterSpec(port=8000), {**live, **env})


def test_a_subset_of_programs_keeps_the_rest_of_the_configuration() -> None:
    text = filter_programs(SUPERVISORD_CONF.read_text(), ["haproxy", "gateway1"])
    assert "[program:haproxy]" in text and "[program:gateway1]" in text and "[supervisord]" in text
    assert "[program:gateway2]" not in text and "manage.py feeds" not in text


def test_one_program_gets_its_own_environment() -> None:
    text = with_program_env(SUPERVISORD_CONF.read_text(), {"gateway1": {"DATABASE_URL": "postgres://h:1/db?x=%41"}})
    section = text.split("[program:gateway1]\n", 1)[1].split("\n[", 1)[0]
    assert 'environment=DATABASE_URL="postgres://h:1/db?x=%%41"' in section.splitlines()
    assert text.count("environment=DATABASE_URL") == 1
