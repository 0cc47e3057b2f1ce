"""No import cycle in product code (issue #16): the import graph of the five packages,
read from the source (module-level and function-level imports; those under
`if TYPE_CHECKING:` never run and do not count), has no strongly connected component.

There is no allow-list: the last cycles (the gateway's api <-> outbox and presence <->
runtime) were broken, and a new one is fixed by deciding which edge is wrong, not
listed. A function-level import does not hide a cycle from this test.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("realtime_project", "prices", "wallets", "notifications", "alerts")


def product_modules() -> dict[str, Path]:
    """Every module of the product, by dotted name (a package by its `__init__.py`)."""
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _under_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _under_type_checking(child):
            for stmt in child.orelse:
                yield from _import_nodes(ast.Module(body=[stmt], type_ignores=[]))
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        yield from _import_nodes(child)


def imported_by(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The product modules `name` imports (`from package import module` names the module)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        if node.level:
            base = package[: len(package) - node.level + 1]
            source = ".".join([*base, *([node.module] if node.module else [])])
        else:
            source = node.module or ""
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            targets.add(submodule if submodule in modules else source)
    found = set()
    for target in targets:
        while target and target not in modules:  # a name inside a module: the module
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = product_modules()
    return {name: imported_by(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
    return found


def test_the_finder_sees_cycles_and_every_import_that_runs(tmp_path: Path) -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}) == [{"a", "b", "c"}]
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import sibling\n"
        "from .pkg.inner import name\n"
        "if TYPE_CHECKING:\n"
        "    from .typed import T\n"
        "def later():\n"
        "    import app.late\n"
    )
    modules = {
        name: tmp_path for name in ("app.mod", "app.sibling", "app.pkg", "app.pkg.inner", "app.typed", "app.late")
    }
    assert imported_by("app.mod", source, modules) == {"app.sibling", "app.pkg.inner", "app.late"}


def test_no_import_cycle_in_product_code() -> None:
    graph = import_graph()
    # The graph is read as the test means: with function-level imports (presence reads
    # the process's hubs through one) and the edges that broke the last cycles.
    assert "realtime_project.gateway.runtime" in graph["realtime_project.gateway.presence"]
    assert "realtime_project.gateway.publisher" in graph["realtime_project.gateway.outbox"]
    found = [sorted(component) for component in cycles(graph)]
    assert not found, f"import cycles (each a set of modules that import each other): {found}"
