"""A WebSocket JSON-RPC proxy in front of a real node (anvil) that misbehaves on demand.

It forwards every frame both ways, and lets a test: drop the connections (abruptly, as a
dying load balancer does), refuse new ones, rewrite the node's subscription
notifications (send a head twice, swallow one, hold one back and send it after the
next), answer some requests with a JSON-RPC error (a node without
`newPendingTransactions`), and inject raw frames of its own (garbage).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

Frame = str | bytes
#: Rewrites one notification from the node into the frames the client gets (none, one, several).
Rewrite = Callable[[dict[str, Any], Frame], list[Frame]]


def is_notification(message: dict[str, Any], kind: str | None = None) -> bool:
    """`kind`: "head" (has parentHash), "pending" or None (any)."""
    if message.get("method") != "eth_subscription":
        return False
    result = (message.get("params") or {}).get("result")
    is_head = isinstance(result, dict) and "parentHash" in result
    return kind is None or (kind == "head") == is_head


class WsProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.url = ""
        self.refuse = False
        self.rewrite: Rewrite | None = None
        #: JSON-RPC requests (method, first param) answered with an error instead of forwarded.
        self.refused_requests: set[tuple[str, str]] = set()
        self.connections = 0
        self.forwarded_heads = 0
        self._server: Server | None = None
        self._clients: set[ServerConnection] = set()

    async def start(self) -> WsProxy:
        self._server = await serve(self._handle, "127.0.0.1", 0, max_size=None)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        await self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def drop(self) -> None:
        """Cut every client connection without a closing handshake."""
        for client in list(self._clients):
            client.transport.abort()
        self._clients.clear()

    async def inject(self, frame: Frame) -> None:
        for client in list(self._clients):
            with contextlib.suppress(ConnectionClosed):
                await client.send(frame)

    async def _handle(self, client: ServerConnection) -> None:
        if self.refuse:
            client.transport.abort()
            return
        self.connections += 1
        self._clients.add(client)
        try:
            async with connect(self.upstream, max_size=None) as node:
                to_node = asyncio.create_task(self._client_to_node(client, node))
                to_client = asyncio.create_task(self._node_to_client(node, client))
                _, pending = await asyncio.wait({to_node, to_client}, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                await asyncio.gather(to_node, to_client, return_exceptions=True)
        except (ConnectionClosed, OSError):
            pass
        finally:
            self._clients.discard(client)

    async def _client_to_node(self, client: ServerConnection, node: Any) -> None:
        async for frame in client:
            try:
                request = json.loads(frame)
            except ValueError:
                request = None
            if isinstance(request, dict):
                params = request.get("params") or [""]
                if (request.get("method"), str(params[0])) in self.refused_requests:
                    error = {"code": -32601, "message": f"{request['method']} {params[0]} is not supported"}
                    reply = json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "error": error})
                    await client.send(reply.encode() if isinstance(frame, bytes) else reply)
                    continue
            await node.send(frame)

    async def _node_to_client(self, node: Any, client: ServerConnection) -> None:
        async for frame in node:
            try:
                message = json.loads(frame)
            except ValueError:
                message = None
            out: list[Frame] = [frame]
            if isinstance(message, dict) and is_notification(message):
                if is_notification(message, "head"):
                    self.forwarded_heads += 1
                if self.rewrite is not None:
                    out = self.rewrite(message, frame)
            for item in out:
                await client.send(item)
