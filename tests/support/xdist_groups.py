"""How `make test` spreads the suite over pytest-xdist workers.

A unit of work is a test module (its module-scoped fixtures, an anvil node or a feed
process, are started once), except two groups that each run on one worker, in order:

- `cluster`: `tests/deploy/` starts supervised clusters (HAProxy, two gateways, workers,
  feeds) and kills their processes; two clusters at once on a 2-core machine would make
  each other's recovery deadlines a measure of the machine, not of the product;
- `browser`: `tests/browser/` shares one Chromium per worker (its session fixture).

xdist's own `--dist loadgroup` reads `xdist_group` marks by rewriting `item._nodeid`,
which pytest 9 no longer reads (node ids are `item._id`): the marks would be ignored and
the tests spread anyway. The grouping is therefore by path, here, in the scheduler.
"""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

#: Path prefixes (relative to the rootdir) that form one unit of work each.
GROUPS = {"tests/deploy/": "cluster", "tests/browser/": "browser"}


def group_of(nodeid: str) -> str | None:
    for prefix, name in GROUPS.items():
        if nodeid.startswith(prefix):
            return name
    return None


def run_first(nodeid: str) -> int:
    """Sort key of the collection: the groups first (the longest units start first,
    while the other workers take the modules), then everything else in its order."""
    return 0 if group_of(nodeid) is not None else 1


class GroupScheduling(LoadScopeScheduling):
    """xdist's load-by-scope scheduling with the groups above as scopes."""

    def _split_scope(self, nodeid: str) -> str:
        return group_of(nodeid) or nodeid.split("::", 1)[0]
