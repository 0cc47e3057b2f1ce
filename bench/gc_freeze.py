"""Effect of `gc.freeze()` + tuned thresholds on fan-out latency (measured here, not assumed).

3,000 subscribers on one channel of one uvicorn gateway, 6 msg/s for 6 s (18,000
deliveries/s), twice with REALTIME_GC_FREEZE=1 (the default) and twice with 0, same run.

Usage: .venv/bin/python -m bench.gc_freeze
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")

from bench.fanout import Gateway, ensure_loadgen, run_load

KEYS = ("deliveries_per_s", "p50_ms", "p99_ms", "max_ms", "lost", "server_cpu_us_per_delivery")


def main() -> None:
    ensure_loadgen()
    for freeze in ("1", "0"):
        for rep in range(2):
            gateway = Gateway("uvicorn", f"gc{freeze}{rep}{os.getpid()}")
            gateway.env["REALTIME_GC_FREEZE"] = freeze
            with gateway:
                result = run_load(gateway, "ours", 3000, 6, 6)
            figures = ", ".join(f"{k}={result[k]}" for k in KEYS)
            print(f"REALTIME_GC_FREEZE={freeze} run {rep + 1}: {figures}", flush=True)


if __name__ == "__main__":
    main()
