"""Logger names follow the modules (issue #16): `realtime.<area>` in realtime_project,
`<app>.<concept>` in an app, where the last part is the module's name or the name of a
package it is in (a subsystem that logs as one: `realtime.hub`, `wallets.devchain`); the
role package `services/` is no concept (`prices/services/tick.py` logs as `prices.tick`).

A module that moves keeps its logger name only if the name still fits where it now is.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.architecture.test_import_graph import ROOT, product_modules

#: The first part of a logger name, by top-level package.
PREFIX = {"realtime_project": "realtime"}
#: Packages that name a role, not a concept.
ROLE_PACKAGES = {"services"}


def logger_names(path: Path) -> list[str | None]:
    """The first argument of every `logging.getLogger(...)` call (None if not a literal)."""
    names: list[str | None] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr != "getLogger" or not isinstance(node.func.value, ast.Name):
            continue
        if node.func.value.id != "logging" or not node.args:
            continue
        arg = node.args[0]
        names.append(arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None)
    return names


def allowed_names(module: str) -> set[str]:
    top, *rest = module.split(".")
    prefix = PREFIX.get(top, top)
    return {f"{prefix}.{part}" for part in rest if part not in ROLE_PACKAGES}


def test_every_logger_is_named_for_its_module() -> None:
    wrong = []
    for module, path in sorted(product_modules().items()):
        for name in logger_names(path):
            if name not in allowed_names(module):
                wrong.append(f"{path.relative_to(ROOT)}: {name!r} (expected one of {sorted(allowed_names(module))})")
    assert not wrong, "\n".join(wrong)


def test_the_rule_reads_as_documented() -> None:
    assert allowed_names("prices.services.tick") == {"prices.tick"}
    assert allowed_names("realtime_project.gateway.hub.core") == {
        "realtime.gateway",
        "realtime.hub",
        "realtime.core",
    }
    assert allowed_names("wallets.devchain") == {"wallets.devchain"}
