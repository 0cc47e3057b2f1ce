"""`make cluster` runs the feed process: exactly one `manage.py feeds` in whatever
process manager the cluster uses (the Procfile today; a supervisord configuration if it
replaces it). Without it, prices would come from the 2 s REST tick alone."""

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


def test_the_cluster_runs_one_feed_process() -> None:
    configs = _commands()
    assert configs, "no Procfile or supervisord configuration: what does `make cluster` run?"
    for name, commands in configs.items():
        feeds = [c for c in commands if FEEDS.search(c)]
        assert len(feeds) == 1, f"{name}: {len(feeds)} feed processes ({feeds}); the cluster needs exactly one"


def test_make_cluster_uses_a_checked_configuration() -> None:
    rule = (ROOT / "Makefile").read_text().split("\ncluster:", 1)[1].split("\n\n", 1)[0]
    assert any(name in rule for name in _commands()) or "supervisord" in rule, rule
