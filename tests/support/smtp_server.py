"""A local SMTP server (aiosmtpd) that receives mails, and the failure modes of real ones.

`mode`: "accept" (keep every message), "refuse" (550 at RCPT), "drop" (closes the
connection in the middle of DATA, once, then accepts), and `silent_server()` accepts TCP
connections but never says hello (the client's timeout).
"""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self) -> None:
        self.mode = "accept"
        self.messages: list[EmailMessage] = []
        self.drops = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.mode == "refuse":
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.mode == "drop":
            self.mode = "accept"
            self.drops += 1
            server.transport.close()  # the connection dies mid-message
            return "421 closing"
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 Message accepted"


@contextmanager
def smtp_server() -> Iterator[tuple[Handler, int]]:
    handler = Handler()
    port = closed_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@contextmanager
def silent_server() -> Iterator[int]:
    """Listens (the kernel completes the handshake) but never sends the SMTP greeting."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port
