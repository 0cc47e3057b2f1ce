"""The apps reach the gateway through its API (issue #16, docs/architecture.md "Layers").

An app module imports `realtime_project.gateway.api` only, except for registering and
configuring, which is no behaviour of the gateway's: `handlers.py` declares namespaces
and commands on the router (with the gateway's error and channel-name types), `apps.py`
registers readiness checks, and any module may read the gateway's settings (`conf`: the
shared Redis and key prefix).
"""

from __future__ import annotations

from tests.architecture.test_import_graph import import_graph

APPS = ("prices", "wallets", "notifications", "alerts")
GATEWAY = "realtime_project.gateway"
#: What any app module may import from the gateway.
EVERYWHERE = {"api", "conf"}
#: What one role module may import besides, by its file name.
BY_ROLE = {
    "handlers": {"router", "namespaces", "errors", "protocol"},
    "apps": {"health"},
}


def test_apps_import_the_gateway_through_its_api() -> None:
    wrong = []
    for module, targets in sorted(import_graph().items()):
        if module.split(".")[0] not in APPS:
            continue
        allowed = EVERYWHERE | BY_ROLE.get(module.rpartition(".")[2], set())
        for target in sorted(targets):
            if target != GATEWAY and not target.startswith(f"{GATEWAY}."):
                continue
            if target.removeprefix(f"{GATEWAY}.").split(".")[0] not in allowed:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)
