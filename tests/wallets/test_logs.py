"""The log parser on hand-made malformed logs (pure: no EVM, no database)."""

from __future__ import annotations

import pytest

from wallets.chaindata import Log
from wallets.logs import APPROVAL_FOR_ALL, TRANSFER, TRANSFER_BATCH, TRANSFER_SINGLE, parse_logs

WATCHED = "0x" + "11" * 20
PADDED = "0x" + "0" * 24 + "11" * 20


def log(topics: tuple[str, ...], data: str) -> Log:
    return Log(
        address="0x" + "22" * 20,
        topics=topics,
        data=data,
        block_number=5,
        block_hash="0x" + "aa" * 32,
        tx_hash="0x" + "bb" * 32,
        log_index=0,
    )


@pytest.mark.parametrize(
    ("topics", "data", "reason"),
    [
        ((TRANSFER, PADDED, PADDED), "0x", "bad_data"),  # ERC-20 Transfer without an amount
        ((TRANSFER, PADDED, PADDED), "0x" + "00" * 31, "bad_data"),  # not whole words
        ((TRANSFER, PADDED, PADDED, "0x" + "00" * 32), "0x" + "00" * 32, "bad_data"),  # 721 with data
        ((TRANSFER, PADDED, PADDED, PADDED, PADDED), "0x", "wrong_topic_count"),
        ((TRANSFER, "0x" + "ff" * 12 + "11" * 20, PADDED), "0x" + "00" * 32, "bad_address_topic"),
        ((TRANSFER_BATCH, PADDED, PADDED, PADDED), "0x" + "00" * 31 + "40" + "00" * 31 + "ff", "bad_data"),
        ((TRANSFER_BATCH, PADDED, PADDED, PADDED), "0x" + "zz" * 32, "bad_data"),
    ],
)
def test_malformed_logs_are_skips_with_reasons(topics: tuple[str, ...], data: str, reason: str) -> None:
    events, skips = parse_logs([log(topics, data)], {WATCHED})
    assert events == [] and [s.reason for s in skips] == [reason]


def test_removed_logs_and_unwatched_logs_are_ignored() -> None:
    ours = log((TRANSFER, PADDED, "0x" + "0" * 24 + "33" * 20), "0x" + "00" * 31 + "05")
    other = log((TRANSFER, "0x" + "0" * 24 + "44" * 20, "0x" + "0" * 24 + "55" * 20), "0x" + "00" * 32)
    events, skips = parse_logs([other], {WATCHED})
    assert events == [] and skips == []
    events, _ = parse_logs([ours], {WATCHED})
    assert [(e.kind, e.standard, e.fields["value"], e.fields["to"]) for e in events] == [
        ("transaction", "erc20", 5, "0x" + "33" * 20)
    ]
    gone = Log(ours.address, ours.topics, ours.data, 5, ours.block_hash, ours.tx_hash, 0, removed=True)
    assert parse_logs([gone], {WATCHED}) == ([], [])


def test_both_parties_watched_gives_one_event_each_and_self_transfer_one() -> None:
    other = "0x" + "0" * 24 + "33" * 20
    both = {WATCHED, "0x" + "33" * 20}
    events, _ = parse_logs([log((TRANSFER, PADDED, other), "0x" + "00" * 31 + "01")], both)
    assert sorted(e.address for e in events) == sorted(both)
    events, _ = parse_logs([log((TRANSFER, PADDED, PADDED), "0x" + "00" * 31 + "01")], {WATCHED})
    assert len(events) == 1


def test_erc1155_and_approval_for_all_decoding() -> None:
    single = log((TRANSFER_SINGLE, PADDED, PADDED, "0x" + "0" * 64), "0x" + "00" * 31 + "07" + "00" * 31 + "02")
    events, _ = parse_logs([single], {WATCHED})
    assert events[0].fields["ids"] == [7] and events[0].fields["values"] == [2] and events[0].fields["burn"] is True
    flag = log((APPROVAL_FOR_ALL, PADDED, "0x" + "0" * 24 + "33" * 20), "0x" + "00" * 31 + "02")
    events, skips = parse_logs([flag], {WATCHED})
    assert events == [] and skips[0].reason == "bad_data"  # a bool that is 2
