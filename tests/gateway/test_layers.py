"""The gateway's pure layer (STYLE.md "The gateway in three layers") imports neither Django
nor Channels, nor a server or an I/O client: it is logic over values, tested with no
event loop, and usable from any process.

Each module is imported in a fresh interpreter. Its parent packages are put in place as
bare packages first, since what `realtime_project/__init__.py` imports (the Celery app,
hence Django) is the package's, not the module's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: The pure modules of the gateway: protocol v1, codes, heartbeat, history and recovery
#: planning, the hub's sequencer and per-channel state, conflation, the token bucket,
#: credentials, the layer message format, channel namespaces.
PURE_MODULES = [
    "realtime_project.gateway.protocol",
    "realtime_project.gateway.errors",
    "realtime_project.gateway.heartbeat",
    "realtime_project.gateway.history",
    "realtime_project.gateway.hub.sequencer",
    "realtime_project.gateway.hub.state",
    "realtime_project.gateway.conflation",
    "realtime_project.gateway.ratelimit",
    "realtime_project.gateway.credentials",
    "realtime_project.gateway.layer_messages",
    "realtime_project.gateway.namespaces",
]

#: Top-level packages the pure layer must not load.
FORBIDDEN = {"django", "channels", "asgiref", "daphne", "uvicorn", "twisted", "redis", "channels_redis", "celery"}

PROBE = """
import importlib, json, sys, types
root, module = sys.argv[1], sys.argv[2]
parts = module.split(".")
for i in range(1, len(parts)):
    name = ".".join(parts[:i])
    package = types.ModuleType(name)
    package.__path__ = [root + "/" + "/".join(parts[:i])]
    sys.modules[name] = package
importlib.import_module(module)
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports_neither_django_nor_channels(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT), module], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert not loaded & FORBIDDEN, f"{module} loads {sorted(loaded & FORBIDDEN)}"


def test_the_probe_sees_an_impure_module() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT), "realtime_project.gateway.router"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert {"django", "channels"} <= set(json.loads(done.stdout))
