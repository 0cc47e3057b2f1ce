"""WebSocket clients of the wallets live benchmark (bench/wallets_live.py), in a process of their own.

Usage: python -m bench.wallets_clients CONFIG.json
CONFIG: {"ws_url", "http_url", "out", "clients": [{"token", "addresses": [...]}]}

Each client takes a ticket with its user's API token, opens one socket and subscribes to
its wallets. It prints `{"ready": n}` once every subscription is acknowledged, then
records each wallet `transaction` frame (time received, block, address, hash, log index,
removed) until it reads `stop` on stdin; then it writes the records to `out` and prints
`{"done": count, "errors": [...]}`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.request
from typing import Any

from websockets.asyncio.client import ClientConnection, connect


def ticket(http_url: str, token: str) -> str:
    request = urllib.request.Request(
        f"{http_url}/api/ws-ticket/", method="POST", headers={"Authorization": f"Token {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return str(json.loads(resp.read())["ticket"])


class Client:
    def __init__(self, ws: ClientConnection, addresses: list[str], records: list[list[Any]]) -> None:
        self.ws = ws
        self.addresses = addresses
        self.records = records
        self.acked = 0
        self.ready = asyncio.Event()
        self.errors: list[Any] = []

    async def run(self) -> None:
        for i, address in enumerate(self.addresses):
            await self.ws.send(json.dumps({"type": "subscribe", "id": i + 1, "channel": f"wallet:{address}"}))
        async for raw in self.ws:
            now = time.time()
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "message":
                if frame.get("snapshot"):
                    continue
                update = frame["data"]
                if update.get("type") != "transaction":
                    continue
                d = update["data"]
                self.records.append(
                    [
                        now,
                        d.get("block"),
                        update.get("address"),
                        d.get("hash"),
                        d.get("log_index"),
                        bool(d.get("removed")),
                    ]
                )
            elif kind == "ping":
                await self.ws.send(json.dumps({"type": "pong", "id": frame.get("id")}))
            elif kind == "subscribed":
                self.acked += 1
                if self.acked == len(self.addresses):
                    self.ready.set()
            elif kind == "error":
                self.errors.append(frame)
                self.ready.set()


async def main(config: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    records: list[list[Any]] = []
    specs = config["clients"]
    tickets = await asyncio.gather(
        *[loop.run_in_executor(None, ticket, config["http_url"], spec["token"]) for spec in specs]
    )
    clients: list[Client] = []
    tasks: list[asyncio.Task[None]] = []
    for spec, t in zip(specs, tickets, strict=True):
        ws = await connect(f"{config['ws_url']}?ticket={t}", max_size=2**24, open_timeout=60)
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome", welcome
        client = Client(ws, spec["addresses"], records)
        clients.append(client)
        tasks.append(asyncio.create_task(client.run()))
    await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), 120)
    errors = [e for c in clients for e in c.errors]
    print(json.dumps({"ready": len(clients), "errors": errors[:5]}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    dead = [t for t in tasks if t.done()]
    for task in tasks:
        task.cancel()
    for client in clients:
        await client.ws.close()
    with open(config["out"], "w") as fh:
        json.dump(records, fh)
    print(json.dumps({"done": len(records), "closed_early": len(dead), "errors": errors[:5]}), flush=True)


if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        asyncio.run(main(json.load(fh)))
