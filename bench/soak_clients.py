"""One client process of the soak (bench/soak.py starts `--client-procs` of them).

A single Python process cannot stand for 1,000 browsers: during a reconnection storm its
one event loop is the bottleneck (seen: a 0-250 ms backoff took 0.4-0.5 s on average, and
the handshakes queued behind the loop, not behind the gateway), so the soak measured the
harness more than the product. Each browser has its own process; the soak spreads its
clients over a few processes instead, each running its share with its own loop.

Protocol with the parent (line-based, on stdin/stdout):
- stdin: one JSON object: {"url", "clients": [{"index", "channels", "user"}], "max_age",
  "sample_every", "out"}; then nothing until the parent closes stdin, which means stop.
- stdout: `live` once every client of this process is subscribed; then `S <monotonic>
  <fresh count>` every `sample_every` seconds and `N <notification id>` per notification
  received (the parent waits for every one at the end).
- at the end: everything else (outages, reconnection phases, latencies, per-channel
  tracks) as JSON in the file `out`, then `done`.

Monotonic time is the machine's (CLOCK_MONOTONIC), the same in every process, so the
parent can put the processes' samples and its kills on one time line.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections import Counter
from dataclasses import asdict
from typing import Any

from bench.chaos_clients import Client, stop_all, summary


class Reporting(Counter[str]):
    """A client's notification counts that also note each id's first arrival."""

    def __init__(self, new: list[str]) -> None:
        super().__init__()
        self.new = new

    def __setitem__(self, key: str, value: int) -> None:
        if key not in self:
            self.new.append(key)
        super().__setitem__(key, value)


def _ticket(user: int) -> str:
    from realtime_project.gateway.auth import issue_ticket

    return issue_ticket(user)[0]


async def run(spec: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    out = sys.stdout
    clients: list[Client] = []
    for row in spec["clients"]:
        user = row.get("user")
        ticket = None if user is None else (lambda user=user: _ticket(user))
        clients.append(Client(row["index"], spec["url"], list(row["channels"]), ticket=ticket))
    received: list[str] = []  # notification ids, in arrival order, not yet reported
    for c in clients:
        c.notifications = Reporting(received)
    tasks = [asyncio.create_task(c.run()) for c in clients]
    stop = asyncio.Event()

    async def wait_stdin_closed() -> None:
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while await reader.read(4096):
            pass
        stop.set()

    watcher = asyncio.create_task(wait_stdin_closed())
    while not all(c.live for c in clients) and not stop.is_set():
        await asyncio.sleep(0.1)
    out.write("live\n")
    out.flush()
    max_age, every = float(spec["max_age"]), float(spec["sample_every"])
    while not stop.is_set():
        now = time.monotonic()
        lines = [f"S {now:.4f} {sum(c.fresh(now, max_age, any_channel=True) for c in clients)}"]
        lines += [f"N {nid}" for nid in received]
        received.clear()
        out.write("\n".join(lines) + "\n")
        out.flush()
        try:
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, every - (time.monotonic() - now)))
        except TimeoutError:
            pass
    await stop_all(clients, [*tasks, watcher])
    result = {
        "clients": [
            {
                "index": c.index,
                "notifications": dict(c.notifications),
                "note_latencies": c.note_latencies,
                "latencies": c.latencies,
                "outages": c.outages,
                "reconnects": c.reconnects,
                "tracks": {ch: asdict(t) for ch, t in c.tracks.items()},
            }
            for c in clients
        ],
        "summary": summary(clients),
        "cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
    }
    with open(spec["out"], "w") as f:
        json.dump(result, f)
    out.write("done\n")
    out.flush()


def main() -> None:
    spec = json.loads(sys.stdin.readline())
    if any(row.get("user") is not None for row in spec["clients"]):
        import django

        django.setup()
    asyncio.run(run(spec))


if __name__ == "__main__":
    main()
