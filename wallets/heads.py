"""Pushed chain events over a node's WebSocket: `newHeads` and `newPendingTransactions`.

web3's `AsyncWeb3` + `WebSocketProvider` (../shared/reference/streams.md §5-6). The node
never replays a subscription and a subscription dies with its connection, so a head is
only a *hint*: the caller scans from its persisted cursor to the HTTP head on each one,
and backfills the same way after every (re)connect (`on_connected`). A head sent twice,
a skipped height, heads out of order or a head the HTTP node does not serve yet then
cost nothing. What the node sends is validated here: a notification with malformed
fields or out-of-range numbers is counted in `errors` and dropped (the stream goes on);
web3 itself drops notifications of unknown subscription ids. A broken connection is
reconnected after a full-jitter delay, and counted.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from web3 import AsyncWeb3, WebSocketProvider
from web3.exceptions import Web3Exception

from realtime_project.backoff import full_jitter
from realtime_project.clock import SYSTEM_CLOCK, Clock

from .chaindata import Tx

logger = logging.getLogger("wallets.heads")

#: Block numbers and quantities past this are garbage, not a chain (2**63: what a
#: database column and a JSON client can hold).
MAX_QUANTITY = 2**63 - 1
#: Seconds between liveness checks of a connected socket (see `HeadStream._check_alive`).
DEFAULT_STALL_AFTER = 30.0
#: Blocks the node may be ahead of the last pushed head at a check before it counts as stuck.
STALL_BLOCKS = 2


class BadNotification(ValueError):
    """A notification whose fields are not what the JSON-RPC spec says."""


class WrongChain(Exception):
    """The WebSocket endpoint serves another chain than the one configured."""


@dataclass(frozen=True, slots=True)
class Head:
    number: int
    hash: str  # 0x + 64 lowercase hex
    parent_hash: str


def _hex32(value: Any, name: str) -> str:
    text = AsyncWeb3.to_hex(bytes(value)) if isinstance(value, bytes | bytearray) else value
    if not isinstance(text, str) or len(text) != 66 or not text.startswith("0x"):
        raise BadNotification(f"{name} is not a 32-byte hash")
    try:
        int(text[2:], 16)
    except ValueError:
        raise BadNotification(f"{name} is not hex") from None
    return text.lower()


def _quantity(value: Any, name: str) -> int:
    if isinstance(value, str):
        try:
            value = int(value, 16)
        except ValueError:
            raise BadNotification(f"{name} is not a hex quantity") from None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_QUANTITY:
        raise BadNotification(f"{name} is out of range")
    return value


def _address(value: Any, name: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) != 42 or not value.startswith("0x"):
        raise BadNotification(f"{name} is not an address")
    try:
        int(value[2:], 16)
    except ValueError:
        raise BadNotification(f"{name} is not hex") from None
    return value.lower()


def parse_head(result: Any) -> Head:
    """A `newHeads` result (raw hex or as web3 formatted it); `BadNotification` if malformed."""
    if not hasattr(result, "get"):
        raise BadNotification("head is not an object")
    return Head(
        number=_quantity(result.get("number"), "number"),
        hash=_hex32(result.get("hash"), "hash"),
        parent_hash=_hex32(result.get("parentHash"), "parentHash"),
    )


def parse_pending(result: Any) -> Tx | str:
    """A `newPendingTransactions` result: a full transaction, or only its hash."""
    if isinstance(result, str | bytes | bytearray):
        return _hex32(result, "transaction hash")
    if not hasattr(result, "get"):
        raise BadNotification("pending transaction is not an object")
    data = result.get("input", result.get("data", "0x"))
    return Tx(
        hash=_hex32(result.get("hash"), "hash"),
        sender=str(_address(result.get("from"), "from")),
        to=_address(result.get("to"), "to", optional=True),
        value=_quantity(result.get("value", 0), "value"),
        nonce=_quantity(result.get("nonce"), "nonce"),
        input=AsyncWeb3.to_hex(bytes(data)) if isinstance(data, bytes | bytearray) else str(data or "0x"),
    )


class StreamEvents:
    """What a `HeadStream` tells its owner (override what you need)."""

    async def connected(self, *, pending: bool) -> None:
        """Subscribed (again): backfill from the persisted cursor now."""

    async def disconnected(self, reason: str) -> None:
        """The socket is down: fall back to polling until `connected`."""

    async def head(self, head: Head) -> None:
        """A new head (a hint: it may repeat, skip or come out of order)."""

    async def pending(self, items: list[Tx | str]) -> None:
        """Pending transactions (full, or hashes only where the node sends only those)."""


class HeadStream:
    """One chain's WebSocket subscriptions, reconnected forever until cancelled.

    `clock` and `rng` are injectable: tests drive reconnects without waiting.
    """

    def __init__(
        self,
        url: str,
        *,
        chain_id: int,
        events: StreamEvents,
        pending: bool = True,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        request_timeout: float = 10.0,
        stall_after: float = DEFAULT_STALL_AFTER,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        self.chain_id = chain_id
        self.events = events
        self.want_pending = pending
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.request_timeout = request_timeout
        self.stall_after = stall_after
        self.clock, self.rng = clock, rng or random.Random()
        self.connected = False
        self.connects = 0
        self.reconnects = 0
        self.heads = 0
        self.pending_seen = 0
        #: None until a subscription was tried; then whether the node offers it.
        self.pending_supported: bool | None = None
        self.pending_detail = ""
        self.errors: Counter[str] = Counter()
        self.last_error = ""
        self.last_head: Head | None = None
        self.last_message_at: float | None = None
        self._streak = 0
        #: Subscription ids of the current connection, by kind.
        self.subscriptions: dict[str, str] = {}
        self._connected_at_number: int | None = None
        self._heads_at_check = 0

    # --- the loop ------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            reason = "closed by the node"
            was_connected = False
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except WrongChain as exc:
                reason = self._error("wrong_chain", str(exc))
            except (OSError, TimeoutError, Web3Exception, ValueError) as exc:
                # web3 raises its own types and the websockets library's (OSError
                # subclasses, InvalidURI/InvalidHandshake: ValueError or Web3Exception).
                reason = self._error("connection", f"{type(exc).__name__}: {str(exc)[:200]}")
            except Exception as exc:  # anything else from the library: keep the feed alive
                reason = self._error("connection", f"{type(exc).__name__}: {str(exc)[:200]}")
            finally:
                was_connected, self.connected = self.connected, False
            if was_connected:  # only the transition: a failed reconnect changes nothing
                await self.events.disconnected(reason)
            delay = full_jitter(self._streak, base=self.backoff_base, cap=self.backoff_cap, rng=self.rng)
            self._streak += 1
            self.reconnects += 1
            await self.clock.sleep(delay)

    def _error(self, code: str, detail: str) -> str:
        self.errors[code] += 1
        self.last_error = f"{code}: {detail}"
        logger.warning("chain %s stream %s: %s", self.chain_id, code, detail)
        return self.last_error

    async def _session(self) -> None:
        provider = WebSocketProvider(self.url, request_timeout=self.request_timeout)
        async with AsyncWeb3(provider) as w3:
            actual = int(await w3.eth.chain_id)
            if actual != self.chain_id:
                raise WrongChain(f"{self.url} serves chain {actual}, configured {self.chain_id}")
            heads_id = str(await w3.eth.subscribe("newHeads"))
            pending_id = await self._subscribe_pending(w3)
            self.subscriptions = {"newHeads": heads_id}
            if pending_id is not None:
                self.subscriptions["newPendingTransactions"] = pending_id
            # Where the node was when we subscribed: heads must come past it (see _check_alive).
            self._connected_at_number, self._heads_at_check = int(await w3.eth.block_number), self.heads
            self.connected = True
            self.connects += 1
            self.last_message_at = self.clock.monotonic()
            await self.events.connected(pending=pending_id is not None)
            await self._consume(w3, heads_id, pending_id)

    async def _subscribe_pending(self, w3: AsyncWeb3[Any]) -> str | None:
        if not self.want_pending:
            return None
        try:
            # Full transactions where the node offers them (geth, anvil): no fetch per hash.
            sub = str(await w3.eth.subscribe("newPendingTransactions", True))
        except (Web3Exception, ValueError):
            try:
                sub = str(await w3.eth.subscribe("newPendingTransactions"))
            except (Web3Exception, ValueError) as exc:
                self.pending_supported, self.pending_detail = False, f"{type(exc).__name__}: {str(exc)[:200]}"
                logger.info("chain %s: no newPendingTransactions (%s)", self.chain_id, self.pending_detail)
                return None
        self.pending_supported, self.pending_detail = True, ""
        return sub

    async def _consume(self, w3: AsyncWeb3[Any], heads_id: str, pending_id: str | None) -> None:
        reader = asyncio.create_task(self._read(w3, heads_id, pending_id), name=f"heads-read:{self.chain_id}")
        checker = asyncio.create_task(self._check_alive(w3), name=f"heads-alive:{self.chain_id}")
        try:
            done, _ = await asyncio.wait({reader, checker}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises what ended it
        finally:
            for task in (reader, checker):
                task.cancel()
            await asyncio.gather(reader, checker, return_exceptions=True)

    async def _read(self, w3: AsyncWeb3[Any], heads_id: str, pending_id: str | None) -> None:
        while True:
            try:
                async for message in w3.socket.process_subscriptions():
                    await self._handle(message, heads_id, pending_id)
                return  # the stream ended: the connection closed
            except BadNotification as exc:
                self._error("bad_notification", str(exc))
            except (Web3Exception, ValueError, TypeError, KeyError, AttributeError) as exc:
                # web3's formatters choke on a malformed notification: it was popped from
                # the queue already, so the next iteration goes on with the next one,
                # unless the connection itself is gone.
                listener = getattr(w3.provider, "_message_listener_task", None)
                if listener is None or listener.done():
                    raise
                self._error("bad_notification", f"{type(exc).__name__}: {str(exc)[:200]}")

    async def _check_alive(self, w3: AsyncWeb3[Any]) -> None:
        """A socket that stays open while its subscription delivers nothing is as good as closed.

        Every `stall_after` seconds the node is asked for its block number over the same
        socket: no answer in time, or a number past the last pushed head by more than
        `STALL_BLOCKS` (heads stopped coming), ends the session (then: reconnect, backfill).
        A quiet chain that mines nothing is not stuck.
        """
        while True:
            await self.clock.sleep(self.stall_after)
            number = int(await asyncio.wait_for(w3.eth.block_number, self.request_timeout))
            seen = max(self.last_head.number if self.last_head else 0, self._connected_at_number or 0)
            if number > seen + STALL_BLOCKS and self.heads == self._heads_at_check:
                raise TimeoutError(f"the node is at block {number} but pushed no head past {seen}")
            self._heads_at_check = self.heads

    async def _handle(self, message: Any, heads_id: str, pending_id: str | None) -> None:
        subscription = str(message.get("subscription", ""))
        result = message.get("result")
        self.last_message_at = self.clock.monotonic()
        if subscription == heads_id:
            head = parse_head(result)
            self.heads += 1
            self._streak = 0  # a working subscription: the next failure backs off from the start
            if self.last_head is None or head.number >= self.last_head.number:
                self.last_head = head
            await self.events.head(head)
        elif pending_id is not None and subscription == pending_id:
            item = parse_pending(result)
            self.pending_seen += 1
            await self.events.pending([item])
        else:
            raise BadNotification(f"notification for an unknown subscription {subscription[:40]!r}")

    def health(self) -> dict[str, Any]:
        now = self.clock.monotonic()
        return {
            "connected": self.connected,
            "connects": self.connects,
            "reconnects": self.reconnects,
            "heads": self.heads,
            "last_head": self.last_head.number if self.last_head else None,
            "last_message_age": None if self.last_message_at is None else round(now - self.last_message_at, 3),
            "pending": (
                "unknown"
                if self.pending_supported is None
                else "subscribed"
                if self.pending_supported
                else "unsupported"
            ),
            "pending_detail": self.pending_detail or None,
            "pending_seen": self.pending_seen,
            "errors": dict(self.errors),
            "last_error": self.last_error or None,
        }
