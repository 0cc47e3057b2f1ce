"""TCP proxies in front of real servers for fault tests: one that cuts a connection
mid-call (`CuttingProxy`), one that makes the server unreachable on demand (`Gate`)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading


class CuttingProxy:
    """Forwards 127.0.0.1:port -> target. When `cut_next` holds a marker, the first
    client request containing it is forwarded to the server, and then the client
    connection is closed before the server's reply is passed back: the call ran, its
    reply was lost (what a stale pooled connection or a network blip does)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.cut_next: bytes | None = None
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        cut = asyncio.Event()

        async def client_to_server() -> None:
            while data := await reader.read(65536):
                if self.cut_next is not None and self.cut_next in data:
                    self.cut_next = None
                    self.cuts += 1
                    cut.set()  # before the server can answer: its reply is never passed on
                up_writer.write(data)
                await up_writer.drain()
                if cut.is_set():
                    return

        async def server_to_client() -> None:
            while data := await up_reader.read(65536):
                if cut.is_set():
                    return
                writer.write(data)
                await writer.drain()

        tasks = [asyncio.ensure_future(client_to_server()), asyncio.ensure_future(server_to_client())]
        cutter = asyncio.ensure_future(cut.wait())
        await asyncio.wait([*tasks, cutter], return_when=asyncio.FIRST_COMPLETED)
        if cut.is_set():
            await asyncio.sleep(0.05)  # let the server run the call; its reply is dropped
        for task in [*tasks, cutter]:
            task.cancel()
        for w in (writer, up_writer):
            w.close()
            with contextlib.suppress(Exception):
                await w.wait_closed()


class Gate:
    """A TCP forwarder 127.0.0.1:port -> target on threads of its own (it outlives any
    test's event loop), that can be shut: `shut()` cuts every open connection and closes
    new ones at once (the server unreachable), `open()` lets them through again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.is_open = True
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name="gate-accept", daemon=True).start()

    def shut(self) -> None:
        with self._lock:
            self.is_open = False
            socks, self._socks = self._socks, set()
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.shut()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.target, timeout=5) if self.is_open else None
            except OSError:
                upstream = None
            if upstream is None:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._socks.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):  # the other direction's recv ends too, and closes dst
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._socks.discard(src)
            src.close()
