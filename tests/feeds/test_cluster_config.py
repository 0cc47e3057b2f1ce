"""`make cluster` runs the feed process: a `manage.py feeds` in whatever process manager
the cluster uses (the Procfile, or `deploy/supervisord.conf` through
`realtime_project.cluster`). Without one, prices would come from the 2 s REST tick alone.
Several are fine: a lease keeps one active, the others stand by (docs/feeds.md)."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FEEDS = re.compile(r"\bmanage\.py\s+feeds\b")


def _commands() -> dict[str, list[str]]:
    """Per configuration file, the commands it starts."""
    found: dict[str, list[str]] = {}
    procfile = ROOT / "Procfile"
    if procfile.is_file():
        lines = [line.split(":", 1) for line in procfile.read_text().splitlines() if ":" in line]
        found["Procfile"] = [command.strip() for name, command in lines if not name.lstrip().startswith("#")]
    for path in ROOT.glob("**/supervisord*.conf"):
        if any(part in {"node_modules", ".venv", ".git"} for part in path.parts):
            continue
        parser = configparser.RawConfigParser(strict=False)
        parser.read(path)
        found[str(path.relative_to(ROOT))] = [
            parser.get(section, "command", fallback="")
            for section in parser.sections()
            if section.startswith("program:") and parser.get(section, "numprocs", fallback="1").strip() not in {"0"}
        ]
    return found


def test_the_cluster_runs_the_feed_process() -> None:
    configs = _commands()
    assert configs, "no Procfile or supervisord configuration: what does `make cluster` run?"
    for name, commands in configs.items():
        assert any(FEEDS.search(c) for c in commands), f"{name} starts no `manage.py feeds`: {commands}"


def test_make_cluster_uses_a_checked_configuration() -> None:
    rule = (ROOT / "Makefile").read_text().split("\ncluster:", 1)[1].split("\n\n", 1)[0]
    used = [name for name in _commands() if name in rule]
    runner = ROOT / "realtime_project" / "cluster.py"
    if "realtime_project.cluster" in rule and runner.is_file():  # supervisord, from its configuration
        used += [name for name in _commands() if Path(name).name in runner.read_text()]
    assert used, f"`make cluster` runs none of {sorted(_commands())}:\n{rule}"
