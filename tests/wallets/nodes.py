"""Real JSON-RPC nodes for the wallets tests: anvil (from npm) and a fault-injecting HTTP proxy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / "contracts" / "node_modules" / ".bin" / "anvil"
INSTALL = "cd contracts && npm ci"


def rpc(url: str, method: str, params: list[Any] | None = None, timeout: float = 5) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        reply = json.loads(resp.read())
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


class Anvil:
    """`anvil` on a free port, in its own process group (stopping it stops the node)."""

    def __init__(self, *extra: str) -> None:
        if not ANVIL.exists():
            pytest.fail(f"anvil is required at {ANVIL}; install it with: {INSTALL}")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile("w+", prefix="anvil-", suffix=".log", delete=False)  # noqa: SIM115  (kept open for the process lifetime)
        self.proc = subprocess.Popen(
            [str(ANVIL), "--port", str(self.port), "--host", "127.0.0.1", "--silent", *extra],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                rpc(self.url, "eth_chainId", timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"anvil did not start: {Path(self.log.name).read_text()[-2000:]}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


@dataclass
class Faults:
    """What the proxy does wrong; tests set these and clear them again."""

    timeout_methods: set[str] = field(default_factory=set)
    error_methods: set[str] = field(default_factory=set)
    #: Methods answered "method not found" (-32601), as a node without them does.
    unsupported_methods: set[str] = field(default_factory=set)
    http_status: dict[str, int] = field(default_factory=dict)
    max_log_range: int | None = None
    head_offset: int = 0
    missing_blocks: set[int] = field(default_factory=set)
    bad_parent_blocks: set[int] = field(default_factory=set)
    chain_id: int | None = None
    #: eth_call by 4-byte selector: the reply's `result` or `error` (a token that reverts, lies).
    call_replies: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: eth_getLogs results marked `removed: true` (as a node serving a reorged log does).
    removed_logs: bool = False
    delay: float = 2.5
    seen: list[str] = field(default_factory=list)


class FaultyRpc:
    """An HTTP JSON-RPC proxy in front of a real node that can time out, fail and lie."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults = Faults()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if isinstance(body, list):  # a JSON-RPC batch: each call through the faults
                    handled = [proxy.handle(item) for item in body]
                    status = max(code for code, _ in handled)
                    reply: Any = [r for _, r in handled] if status == 200 else handled[0][1]
                else:
                    status, reply = proxy.handle(body)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if status == 429:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, body: dict[str, Any]) -> tuple[int, Any]:
        f = self.faults
        method, params, rid = body["method"], body.get("params") or [], body.get("id")
        f.seen.append(method)
        if method in f.timeout_methods:
            time.sleep(f.delay)
        if method in f.http_status:
            return f.http_status[method], {
                "jsonrpc": "2.0",
                "id": rid,
                "error": {"code": -32005, "message": "rate limited"},
            }
        if method in f.unsupported_methods:
            message = f"the method {method} does not exist/is not available"
            return 200, {"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": message}}
        if method in f.error_methods:
            return 200, {
                "jsonrpc": "2.0",
                "id": rid,
                "error": {"code": -32000, "message": "internal error: database unavailable"},
            }
        if method == "eth_call" and params and str(params[0].get("data", ""))[:10] in f.call_replies:
            return 200, {"jsonrpc": "2.0", "id": rid, **f.call_replies[str(params[0]["data"])[:10]]}
        if method == "eth_chainId" and f.chain_id is not None:
            return 200, {"jsonrpc": "2.0", "id": rid, "result": hex(f.chain_id)}
        if method == "eth_getLogs" and f.max_log_range is not None:
            lo, hi = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
            if hi - lo + 1 > f.max_log_range:
                message = f"query exceeds max block range {f.max_log_range}"
                return 200, {"jsonrpc": "2.0", "id": rid, "error": {"code": -32005, "message": message}}
        tags = ("latest", "pending", "safe", "finalized")
        if (
            method == "eth_getBlockByNumber"
            and params
            and params[0] not in tags
            and int(params[0], 16) in f.missing_blocks
        ):
            return 200, {"jsonrpc": "2.0", "id": rid, "result": None}
        reply = rpc_raw(self.upstream, body)
        if method == "eth_getLogs" and f.removed_logs and isinstance(reply.get("result"), list):
            for log in reply["result"]:
                log["removed"] = True
        if method == "eth_blockNumber" and f.head_offset and "result" in reply:
            reply["result"] = hex(max(0, int(reply["result"], 16) + f.head_offset))
        if method == "eth_getBlockByNumber" and isinstance(reply.get("result"), dict):
            block = reply["result"]
            if int(block["number"], 16) in f.bad_parent_blocks:
                block["parentHash"] = "0x" + "de" * 32
            if params and params[0] == "latest" and f.head_offset:
                number = max(0, int(block["number"], 16) + f.head_offset)
                reply = rpc_raw(self.upstream, {**body, "params": [hex(number), *params[1:]]})
        return 200, reply


def rpc_raw(url: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())
