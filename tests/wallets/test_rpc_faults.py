"""A node that times out, fails, caps log ranges, goes backwards or lies: the cursor never skips."""

from __future__ import annotations

from typing import Any

import pytest
from web3 import HTTPProvider, Web3

from tests.wallets.conftest import artifact, link
from wallets.models import ChainCursor, WalletActivity
from wallets.scanning.scanner import chain_scan
from wallets.services.chains import chain_register

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.evm]


class Setup:
    def __init__(self, anvil: Any, faulty: Any) -> None:
        self.w3 = Web3(HTTPProvider(anvil.url))
        self.accounts = list(self.w3.eth.accounts)
        self.faulty = faulty
        art = artifact("TestERC20")
        factory = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        receipt = self.w3.eth.wait_for_transaction_receipt(
            factory.constructor("T", "T", 0).transact({"from": self.accounts[0]})
        )
        self.token = self.w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])

    def mint(self, who: int, amount: int) -> str:
        return str(
            Web3.to_hex(self.token.functions.mint(self.accounts[who], amount).transact({"from": self.accounts[0]}))
        )

    def pay(self, who: int, value: int) -> str:
        tx = {"from": self.accounts[0], "to": self.accounts[who], "value": value}
        return str(Web3.to_hex(self.w3.eth.send_transaction(tx)))  # type: ignore[arg-type]

    @property
    def head(self) -> int:
        return int(self.w3.eth.block_number)

    def cursor(self) -> ChainCursor:
        return ChainCursor.objects.get(chain__chain_id=31337)


@pytest.fixture
def node(anvil: Any, faulty: Any, user: Any, settings: Any) -> Setup:
    # Generous for a loaded CI machine; the proxy delays 2.5 s when a timeout is wanted.
    settings.WALLETS = {"RPC_TIMEOUT": 1.5, "BATCH_BLOCKS": 3, "ADDRESS_FILTER_LIMIT": 100}
    setup = Setup(anvil, faulty)
    chain_register(
        chain_id=31337, name="anvil", rpc_url=faulty.url, required_confirmations=1, start_block=setup.head + 1
    )
    link(user, setup.accounts[1])
    return setup


def minted_blocks(setup: Setup) -> set[int]:
    return set(WalletActivity.objects.filter(kind="transaction").values_list("block_number", flat=True))


def test_timeout_stops_the_scan_and_nothing_advances(node: Setup) -> None:
    assert chain_scan(chain_id=31337).error == ""
    before = node.cursor()
    node.mint(1, 5)
    node.faulty.faults.timeout_methods = {"eth_getLogs"}

    result = chain_scan(chain_id=31337)

    assert result.error == "rpc_timeout" and "eth_getLogs timed out" in result.detail
    after = node.cursor()
    assert (after.block_number, after.block_hash) == (before.block_number, before.block_hash)
    assert after.last_error == "rpc_timeout" and after.last_error_at is not None
    assert not WalletActivity.objects.exists()
    node.faulty.faults.timeout_methods = set()
    assert chain_scan(chain_id=31337).error == ""
    assert node.cursor().block_number == node.head and node.cursor().last_error == ""
    assert minted_blocks(node) == {node.head}


@pytest.mark.parametrize("method", ["eth_getBlockByNumber", "eth_getLogs", "eth_call", "eth_getBalance"])
def test_rpc_errors_write_nothing(node: Setup, method: str) -> None:
    chain_scan(chain_id=31337)
    before = node.cursor().block_number
    node.pay(1, 10**15)
    node.mint(1, 5)
    node.faulty.faults.error_methods = {method}

    result = chain_scan(chain_id=31337)

    assert result.error == "rpc_error" and method in result.detail
    assert node.cursor().block_number == before
    assert not WalletActivity.objects.exists()
    node.faulty.faults.error_methods = set()
    assert chain_scan(chain_id=31337).error == ""
    assert minted_blocks(node) == {node.head - 1, node.head}


def test_rate_limited_http_429(node: Setup) -> None:
    chain_scan(chain_id=31337)
    node.mint(1, 5)
    node.faulty.faults.http_status = {"eth_getBlockByNumber": 429}
    result = chain_scan(chain_id=31337)
    assert result.error == "rpc_unavailable"
    assert not WalletActivity.objects.exists()


def test_log_range_cap_is_narrowed_adaptively(node: Setup) -> None:
    chain_scan(chain_id=31337)
    start = node.head + 1
    for _ in range(7):
        node.mint(1, 1)
    node.faulty.faults.max_log_range = 2
    node.faulty.faults.seen.clear()

    result = chain_scan(chain_id=31337)

    assert result.error == "" and result.blocks == 7
    assert minted_blocks(node) == set(range(start, start + 7))
    # 3-block batches: each first asks 3, is refused, narrows to 1 (then regrows to 2).
    assert node.faulty.faults.seen.count("eth_getLogs") > 3


def test_node_going_backwards_changes_nothing(node: Setup) -> None:
    node.mint(1, 5)
    node.mint(1, 6)
    assert chain_scan(chain_id=31337).error == ""
    before = node.cursor()
    rows = WalletActivity.objects.count()
    node.faulty.faults.head_offset = -2  # a lagging node behind a load balancer

    result = chain_scan(chain_id=31337)

    assert result.error == "node_behind"
    after = node.cursor()
    assert (after.block_number, after.block_hash) == (before.block_number, before.block_hash)
    assert WalletActivity.objects.count() == rows


def test_missing_block_commits_up_to_the_gap_only(node: Setup) -> None:
    chain_scan(chain_id=31337)
    start = node.head + 1
    for _ in range(3):
        node.mint(1, 1)
    node.faulty.faults.missing_blocks = {start + 1}

    result = chain_scan(chain_id=31337)

    assert result.error == "missing_block"
    assert node.cursor().block_number == start  # the block before the gap, not past it
    assert minted_blocks(node) == {start}
    node.faulty.faults.missing_blocks = set()
    assert chain_scan(chain_id=31337).error == ""
    assert minted_blocks(node) == {start, start + 1, start + 2}


def test_block_with_a_missing_parent_is_not_taken_for_a_reorg(node: Setup) -> None:
    node.mint(1, 1)
    chain_scan(chain_id=31337)
    before = node.cursor()
    node.mint(1, 2)
    node.faulty.faults.bad_parent_blocks = {node.head}

    result = chain_scan(chain_id=31337)

    assert result.error == "missing_parent" and result.reorgs == []
    after = node.cursor()
    assert (after.block_number, after.block_hash) == (before.block_number, before.block_hash)
    assert WalletActivity.objects.filter(kind="transaction").count() == 1


def test_node_of_another_chain_is_refused(node: Setup) -> None:
    node.faulty.faults.chain_id = 1
    result = chain_scan(chain_id=31337)
    assert result.error == "chain_id_mismatch" and "serves chain 1" in result.detail
    assert not ChainCursor.objects.filter(chain__chain_id=31337, block_number__gt=0).exists()


def test_unsupported_rpc_url_is_a_recorded_error(node: Setup) -> None:
    chain_register(chain_id=31337, name="anvil", rpc_url="ftp://example.invalid", required_confirmations=1)
    result = chain_scan(chain_id=31337)
    assert result.error == "unsupported_rpc_url"


def test_logs_the_node_marks_removed_are_not_recorded(node: Setup) -> None:
    node.faulty.faults.removed_logs = True
    node.mint(1, 5)
    paid = node.pay(1, 3)

    result = chain_scan(chain_id=31337)

    assert result.error == "" and node.cursor().block_number == node.head
    # The token log came back `removed: true`: nothing of it; the native transfer stands.
    rows = WalletActivity.objects.filter(address=node.accounts[1], kind="transaction")
    assert [(r.tx_hash, r.payload["data"]["standard"]) for r in rows] == [(paid, "native")]


def test_a_token_whose_symbol_reverts_and_decimals_lie_is_recorded_with_its_issues(node: Setup) -> None:
    from wallets.models import TokenMetadata

    words = (32).to_bytes(32, "big").hex() + (4).to_bytes(32, "big").hex() + b"nope".hex().ljust(64, "0")
    reason = "0x08c379a0" + words  # Error("nope")
    node.faulty.faults.call_replies = {
        "0x95d89b41": {"error": {"code": 3, "message": "execution reverted: nope", "data": reason}},  # symbol()
        "0x313ce567": {"result": "0x" + "ff" * 32},  # decimals() = 2**256 - 1
    }
    minted = node.mint(1, 12345)

    result = chain_scan(chain_id=31337)

    assert result.error == "" and node.cursor().block_number == node.head
    meta = TokenMetadata.objects.get(address=node.token.address.lower())
    assert (meta.symbol, meta.decimals, meta.issues) == ("", None, "no symbol(); decimals() out of range")
    [row] = WalletActivity.objects.filter(address=node.accounts[1], kind="transaction", tx_hash=minted)
    data = row.payload["data"]
    assert (data["symbol"], data["decimals"], data["value_raw"]) == ("", None, "12345")
