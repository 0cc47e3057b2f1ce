"""Run every benchmark in sequence (`make bench`); each prints its own ratios.

Results and the exact commands are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = [
    ["bench.fanout"],
    ["bench.compression"],
    ["bench.deflate_fanout"],
    ["bench.gc_freeze"],
    ["bench.prices_tick"],
    ["bench.prices_streams"],
    ["bench.wallets_scan"],
    ["bench.wallets_live"],
    ["bench.alerts_engine"],
    ["bench.reconnect_storm"],
    ["bench.push_fanout"],
    ["bench.handshake"],
]


def main() -> int:
    failed = []
    for args in BENCHMARKS:
        print(f"\n######## python -m {' '.join(args)}", flush=True)
        if subprocess.run([sys.executable, "-m", *args], cwd=ROOT).returncode != 0:
            failed.append(args[0])
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
