"""Token event parsing: raw logs -> typed events of watched addresses (pure, no I/O).

Topics and layouts: ERC-20 / ERC-721 `Transfer` share topic0 and differ by topic count
(3: amount in data; 4: tokenId indexed, empty data); ERC-1155 topics are
`[topic0, operator, from, to]`. Anything else with a known topic0 is a malformed log and
becomes a `Skip` with a reason, never an exception (one bad token must not stall a chain).
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass, field
from typing import Any

from .addresses import ZERO_ADDRESS
from .chaindata import Log

TRANSFER = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
APPROVAL = "0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925"
APPROVAL_FOR_ALL = "0x17307eab39ab6107e8899845ad3d59bd9653f200f220920489ca2b5937696c31"
TRANSFER_SINGLE = "0xc3d58168c5ae7397731d063d5bbf3d657854427343f4c083240f7aacaa2d0f62"
TRANSFER_BATCH = "0x4a39dc06d4c0dbc64b70af90fd698a233a518aa5d07e595d983b8c0526c8f7fb"
TOPICS = (TRANSFER, APPROVAL, APPROVAL_FOR_ALL, TRANSFER_SINGLE, TRANSFER_BATCH)
#: topic0s with an address in each indexed position (for server-side address filters).
TOPIC_ADDRESS_POSITIONS: dict[int, tuple[str, ...]] = {
    1: (TRANSFER, APPROVAL, APPROVAL_FOR_ALL),  # from / owner
    2: (TRANSFER, APPROVAL, APPROVAL_FOR_ALL, TRANSFER_SINGLE, TRANSFER_BATCH),  # to / spender / operator / from
    3: (TRANSFER_SINGLE, TRANSFER_BATCH),  # ERC-1155 to
}
UNLIMITED = 2**256 - 1
_ADDRESS_PAD = "0x" + "0" * 24
_WORD = 64  # hex chars per 32-byte word


@dataclass(slots=True)
class Event:
    """One decoded event as it concerns one watched address (lowercase)."""

    kind: str  # "transaction" | "approval" | "nft"
    standard: str  # "erc20" | "erc721" | "erc1155" | "nft" (ApprovalForAll: 721 or 1155)
    name: str  # the Solidity event name
    address: str
    token: str
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Skip:
    """A log that could not be used, and why (recorded by the scanner)."""

    reason: str
    detail: str
    log: Log


class Malformed(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _address(topic: str) -> str:
    if len(topic) != 66 or not topic.startswith(_ADDRESS_PAD):
        raise Malformed("bad_address_topic", f"indexed address topic is not a left-padded address: {topic[:70]}")
    return "0x" + topic[26:]


def _words(data: str, expected: int | None = None) -> list[int]:
    body = data[2:] if data.startswith("0x") else data
    if len(body) % _WORD:
        raise Malformed("bad_data", f"log data is not whole 32-byte words ({len(body) // 2} bytes)")
    count = len(body) // _WORD
    if expected is not None and count != expected:
        raise Malformed("bad_data", f"log data has {count} words, expected {expected}")
    try:
        return [int(body[i : i + _WORD], 16) for i in range(0, len(body), _WORD)]
    except ValueError:
        raise Malformed("bad_data", "log data is not hex") from None


def _uint_array(words: list[int], offset_bytes: int) -> list[int]:
    start = offset_bytes // 32
    if offset_bytes % 32 or start >= len(words):
        raise Malformed("bad_data", "ABI array offset out of range")
    length = words[start]
    if start + 1 + length > len(words):
        raise Malformed("bad_data", "ABI array longer than the log data")
    return words[start + 1 : start + 1 + length]


def decode(log: Log) -> tuple[str, str, dict[str, Any], tuple[str, ...]]:
    """Decode a log: (kind, standard, fields, parties), raising `Malformed`.

    `parties` are the lowercase addresses the event concerns (candidates for watching).
    """
    topics = log.topics
    n = len(topics)
    topic0 = topics[0] if n else ""
    if topic0 == TRANSFER:
        if n == 3:
            (value,) = _words(log.data, 1)
            frm, to = _address(topics[1]), _address(topics[2])
            return "transaction", "erc20", {"from": frm, "to": to, "value": value}, (frm, to)
        if n == 4:
            if log.data not in ("0x", ""):
                raise Malformed("bad_data", "ERC-721 Transfer with non-empty data")
            frm, to = _address(topics[1]), _address(topics[2])
            return "nft", "erc721", {"from": frm, "to": to, "token_id": int(topics[3], 16)}, (frm, to)
        raise Malformed("wrong_topic_count", f"Transfer with {n} topics (ERC-20 has 3, ERC-721 has 4)")
    if topic0 == APPROVAL:
        if n == 3:
            (value,) = _words(log.data, 1)
            owner, spender = _address(topics[1]), _address(topics[2])
            fields = {"owner": owner, "spender": spender, "value": value, "unlimited": value == UNLIMITED}
            return "approval", "erc20", fields, (owner, spender)
        if n == 4:
            owner, spender = _address(topics[1]), _address(topics[2])
            return (
                "approval",
                "erc721",
                {"owner": owner, "spender": spender, "token_id": int(topics[3], 16)},
                (
                    owner,
                    spender,
                ),
            )
        raise Malformed("wrong_topic_count", f"Approval with {n} topics (ERC-20 has 3, ERC-721 has 4)")
    if topic0 == APPROVAL_FOR_ALL:
        if n != 3:
            raise Malformed("wrong_topic_count", f"ApprovalForAll with {n} topics (expected 3)")
        (approved,) = _words(log.data, 1)
        if approved > 1:
            raise Malformed("bad_data", "ApprovalForAll flag is not a bool")
        owner, operator = _address(topics[1]), _address(topics[2])
        return "approval", "nft", {"owner": owner, "operator": operator, "approved": bool(approved)}, (owner, operator)
    if topic0 == TRANSFER_SINGLE:
        if n != 4:
            raise Malformed("wrong_topic_count", f"TransferSingle with {n} topics (expected 4)")
        token_id, value = _words(log.data, 2)
        operator, frm, to = _address(topics[1]), _address(topics[2]), _address(topics[3])
        fields = {"operator": operator, "from": frm, "to": to, "ids": [token_id], "values": [value]}
        return "nft", "erc1155", fields, (frm, to)
    if topic0 == TRANSFER_BATCH:
        if n != 4:
            raise Malformed("wrong_topic_count", f"TransferBatch with {n} topics (expected 4)")
        words = _words(log.data)
        if len(words) < 2:
            raise Malformed("bad_data", "TransferBatch data too short")
        ids, values = _uint_array(words, words[0]), _uint_array(words, words[1])
        if len(ids) != len(values):
            raise Malformed("bad_data", f"TransferBatch has {len(ids)} ids but {len(values)} values")
        operator, frm, to = _address(topics[1]), _address(topics[2]), _address(topics[3])
        fields = {"operator": operator, "from": frm, "to": to, "ids": ids, "values": values}
        return "nft", "erc1155", fields, (frm, to)
    raise Malformed("unknown_topic", f"topic0 {topic0[:66]} is not a token event")


_NAMES = {
    (TRANSFER, "erc20"): "Transfer",
    (TRANSFER, "erc721"): "Transfer",
    (APPROVAL, "erc20"): "Approval",
    (APPROVAL, "erc721"): "Approval",
    (APPROVAL_FOR_ALL, "nft"): "ApprovalForAll",
    (TRANSFER_SINGLE, "erc1155"): "TransferSingle",
    (TRANSFER_BATCH, "erc1155"): "TransferBatch",
}


def parse_logs(logs: Iterable[Log], watched: Set[str]) -> tuple[list[Event], list[Skip]]:
    """Events of `watched` (lowercase addresses) in `logs`, and the logs skipped with why.

    A log that concerns no watched address is ignored without decoding its data when the
    topics already tell (the common case when logs are fetched by topic0 only).
    """
    events: list[Event] = []
    skips: list[Skip] = []
    for log in logs:
        if log.removed:
            # A node's "removed" log belongs to an orphaned block; reorgs are handled by
            # parent-hash checks, so never record it as activity.
            continue
        topics = log.topics
        # Cheap pre-filter: an address topic is the last 40 hex chars of a topic.
        if not any(("0x" + t[26:]) in watched for t in topics[1:4] if len(t) == 66):
            continue
        try:
            kind, standard, fields, parties = decode(log)
        except Malformed as exc:
            skips.append(Skip(exc.reason, exc.detail, log))
            continue
        if fields.get("from") == ZERO_ADDRESS:
            fields["mint"] = True
        if fields.get("to") == ZERO_ADDRESS:
            fields["burn"] = True
        name = _NAMES[(topics[0], standard)]
        seen: set[str] = set()
        for party in parties:
            if party in watched and party not in seen:
                seen.add(party)
                events.append(
                    Event(
                        kind=kind,
                        standard=standard,
                        name=name,
                        address=party,
                        token=log.address,
                        block_number=log.block_number,
                        block_hash=log.block_hash,
                        tx_hash=log.tx_hash,
                        log_index=log.log_index,
                        fields=fields,
                    )
                )
    return events, skips
