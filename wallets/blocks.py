"""BlockListener: new blocks and token events of a chain, by polling JSON-RPC.

Polling over HTTP works with every provider and survives restarts (the position is the
persisted cursor); `eth_subscribe` needs a WebSocket provider and loses events on
reconnect. Blocks are checked to chain by parent hash as they are fetched; logs are
fetched with adaptive range chunking (providers cap `eth_getLogs` ranges and results).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from realtime_project.runtime import Slot

from .chaindata import Block, Log
from .logs import TOPIC_ADDRESS_POSITIONS, TOPICS
from .providers import client_for
from .rpc import ChainClient, RangeTooLarge

logger = logging.getLogger("wallets.blocks")

#: eth_getLogs ranges learned per chain id (halved on a cap, regrown on success).
LOG_RANGES: Slot[dict[int, int]] = Slot("wallets.log_ranges", dict)


@dataclass(frozen=True)
class LogFilter:
    """Token events to fetch: by topic0, optionally narrowed to watched addresses.

    With `addresses` the node filters them in each indexed position (one query per
    position); without, logs are fetched by topic0 only and filtered locally.
    """

    topics: tuple[str, ...] = TOPICS
    addresses: tuple[str, ...] = ()
    contracts: tuple[str, ...] = ()

    def queries(self) -> list[list[Any]]:
        if not self.addresses:
            return [[list(self.topics)]]
        padded = ["0x" + "0" * 24 + a[2:].lower() for a in self.addresses]
        out: list[list[Any]] = []
        for position, topics in TOPIC_ADDRESS_POSITIONS.items():
            wanted = [t for t in topics if t in self.topics]
            if wanted:
                out.append([wanted] + [None] * (position - 1) + [padded])
        return out


@dataclass
class BlockRange:
    """Blocks fetched in order, each the child of the previous one."""

    blocks: list[Block] = field(default_factory=list)
    #: Why fetching stopped early: "" (complete), "missing_block" or "parent_mismatch".
    stopped: str = ""
    stopped_at: int | None = None


class ChainLike(Protocol):
    chain_id: int
    rpc_url: str


def _default_client(chain: ChainLike) -> ChainClient:
    return client_for(chain.rpc_url, chain.chain_id)


class BlockListener:
    """Reads chains' heads, blocks and token logs; one RPC client per chain per listener."""

    def __init__(
        self,
        *,
        max_log_range: int = 2_000,
        client_factory: Callable[[ChainLike], ChainClient] = _default_client,
    ) -> None:
        self.max_log_range = max_log_range
        self._factory = client_factory
        self._clients: dict[int, ChainClient] = {}

    def client(self, chain: ChainLike) -> ChainClient:
        client = self._clients.get(chain.chain_id)
        if client is None:
            client = self._clients[chain.chain_id] = self._factory(chain)
        return client

    def calls(self, chain: ChainLike) -> tuple[int, int, float]:
        """JSON-RPC calls and HTTP requests made for `chain` by this listener, and seconds spent."""
        client = self._clients.get(chain.chain_id)
        if client is None:
            return 0, 0, 0.0
        return sum(client.calls.values()), client.requests, client.rpc_seconds

    def get_latest_block(self, chain: ChainLike) -> Block | None:
        """The node's newest block (header only)."""
        return self.client(chain).block("latest", full=False)

    def fetch_blocks(self, chain: ChainLike, start: int, end: int, *, parent_hash: str | None) -> BlockRange:
        """Blocks `start..end` with their transactions, stopping at the first gap.

        The first block must be the child of `parent_hash` (the cursor); a mismatch there
        is a reorg (stopped="parent_mismatch", no blocks). A missing block or a broken
        chain inside the range (a reorg while we fetch) truncates the range.
        """
        client = self.client(chain)
        out = BlockRange()
        expected_parent = parent_hash
        numbers = list(range(start, end + 1))
        for number, block in zip(numbers, client.blocks(numbers), strict=True):
            if block is None:
                out.stopped, out.stopped_at = "missing_block", number
                break
            if block.number != number:
                out.stopped, out.stopped_at = "wrong_block_number", number
                break
            if expected_parent is not None and block.parent_hash != expected_parent:
                out.stopped, out.stopped_at = "parent_mismatch", number
                break
            out.blocks.append(block)
            expected_parent = block.hash
        return out

    def fetch_logs(self, chain: ChainLike, flt: LogFilter, start: int, end: int) -> list[Log]:
        """Logs of `flt` in `start..end`, narrowing the range when the node caps it."""
        client = self.client(chain)
        chain_id = chain.chain_id
        ranges = LOG_RANGES.get()
        queries = flt.queries()
        logs: list[Log] = []
        for topics in queries:
            lo = start
            while lo <= end:
                size = min(ranges.get(chain_id, self.max_log_range), self.max_log_range)
                hi = min(end, lo + size - 1)
                try:
                    part = client.logs(start=lo, end=hi, topics=topics, address=flt.contracts or None)
                except RangeTooLarge:
                    if hi == lo:
                        raise  # even one block is too much: nothing left to narrow
                    ranges[chain_id] = max(1, (hi - lo + 1) // 2)
                    logger.info("chain %s: eth_getLogs range capped, narrowing to %d", chain_id, ranges[chain_id])
                    continue
                logs.extend(part)
                lo = hi + 1
                if size < self.max_log_range:
                    ranges[chain_id] = min(self.max_log_range, size * 2)
        if len(queries) > 1:
            # The same log can match several positions (from and to both watched).
            logs = list({(log.block_hash, log.log_index): log for log in logs}.values())
        logs.sort(key=lambda log: (log.block_number, log.log_index))
        return logs

    # --- subscription-style iteration (for consumers other than the scanner) ---------------

    def subscribe_blocks(self, chain: ChainLike, *, after: Block, batch: int = 100) -> Iterator[Block]:
        """Yield the blocks after `after` up to the current head, in order, checked by parent hash.

        Stops (without raising) at a gap or a reorg: the caller resumes from the last block
        it got; a reorg then shows as a parent mismatch of the next block.
        """
        head = self.client(chain).head()
        position = after
        while position.number < head:
            got = self.fetch_blocks(
                chain, position.number + 1, min(head, position.number + batch), parent_hash=position.hash
            )
            yield from got.blocks
            if got.stopped or not got.blocks:
                return
            position = got.blocks[-1]

    def subscribe_events(self, chain: ChainLike, flt: LogFilter, *, after: Block, batch: int = 100) -> Iterator[Log]:
        """Yield the logs of `flt` in the canonical blocks after `after` (logs of other forks dropped)."""
        blocks = list(self.subscribe_blocks(chain, after=after, batch=batch))
        if not blocks:
            return
        hashes = {b.number: b.hash for b in blocks}
        for log in self.fetch_logs(chain, flt, blocks[0].number, blocks[-1].number):
            if hashes.get(log.block_number) == log.block_hash:
                yield log
