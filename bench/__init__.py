"""Benchmarks (plain scripts, not tests): see docs/benchmarks.md for commands and results."""

import os

# Load generators open thousands of sockets from one loopback address: every gateway a
# benchmark starts (they inherit this environment) lifts the per-address connection
# limit (docs/protocol.md "Limits"); bench/handshake.py measures the limit itself.
os.environ.setdefault("REALTIME_MAX_CONNECTIONS_PER_ADDRESS", "0")
