"""Internal transfers from call traces on a real anvil (both trace APIs give the same rows),
chains without traces saying so in their health, and the pure trace parsers."""

from __future__ import annotations

from typing import Any

import pytest
from web3 import HTTPProvider, Web3

from tests.wallets.conftest import artifact, link
from tests.wallets.nodes import FaultyRpc
from wallets.health import chains_health
from wallets.models import ChainCursor, WalletActivity, WalletBackfill
from wallets.scanning.backfill import backfill_run
from wallets.scanning.scanner import chain_scan
from wallets.services.chains import chain_register
from wallets.traces import from_call_tracer, from_trace_block

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.evm]


class Contracts:
    def __init__(self, url: str) -> None:
        self.w3 = Web3(HTTPProvider(url))
        self.accounts = list(self.w3.eth.accounts)

    def deploy(self, name: str) -> Any:
        art = artifact(name)
        factory = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        tx = factory.constructor().transact({"from": self.accounts[0]})
        address = self.w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
        return self.w3.eth.contract(address=address, abi=art["abi"])

    def send(self, fn: Any, sender: int, value: int = 0) -> str:
        return str(Web3.to_hex(fn.transact({"from": self.accounts[sender], "value": value})))


def internal_rows() -> list[tuple[str, str, int, str, str, str, int]]:
    rows = WalletActivity.objects.filter(kind="internal").order_by("block_number", "tx_hash", "log_index", "address")
    return [
        (
            r.address,
            r.tx_hash,
            r.log_index,
            r.payload["data"]["from"],
            r.payload["data"]["to"],
            r.payload["data"]["direction"],
            int(r.payload["data"]["value_raw"]),
        )
        for r in rows
    ]


def activity_scenario(anvil: Any, user: Any, rpc_url: str) -> dict[str, Any]:
    c = Contracts(anvil.url)
    a1, a2 = c.accounts[1:3]
    f1, f2, rejecter = c.deploy("Forwarder"), c.deploy("Forwarder"), c.deploy("Rejecter")
    chain_register(
        chain_id=31337, name="anvil", rpc_url=rpc_url, required_confirmations=1, start_block=c.w3.eth.block_number + 1
    )
    link(user, a1)
    link(user, a2)
    txs = {
        "forward": c.send(f1.functions.forward(a1), 0, 100),
        "via": c.send(f1.functions.forwardVia(f2.address, a1), 0, 50),
        "split": c.send(f1.functions.split(a1, a2), 0, 10),
        "failed": c.send(f1.functions.tryPay(rejecter.address), 1, 7),  # the inner payment fails
        "payout": c.send(f1.functions.payout(a2, 5), 0),  # out of what tryPay kept
    }
    return {"txs": txs, "a1": a1, "a2": a2, "f1": f1.address, "f2": f2.address}


def test_internal_transfers_are_recorded_with_their_own_natural_key(anvil: Any, user: Any) -> None:
    s = activity_scenario(anvil, user, anvil.url)
    a1, a2, f1, f2, txs = s["a1"], s["a2"], s["f1"], s["f2"], s["txs"]

    result = chain_scan(chain_id=31337)

    assert result.error == ""
    assert ChainCursor.objects.get().trace_method == "debug_traceBlockByNumber"
    assert internal_rows() == [  # a block each, in the order sent
        (a1, txs["forward"], 1, f1, a1, "in", 100),
        (a1, txs["via"], 2, f2, a1, "in", 50),  # two calls deep: forwarder 1 -> 2 -> a1
        (a1, txs["split"], 1, f1, a1, "in", 5),
        (a2, txs["split"], 2, f1, a2, "in", 5),
        (a2, txs["payout"], 1, f1, a2, "in", 5),
    ]
    # The failed inner payment moved nothing; its transaction's own value (a1 -> f1) did.
    assert not WalletActivity.objects.filter(kind="internal", tx_hash=txs["failed"]).exists()
    native = WalletActivity.objects.get(kind="transaction", tx_hash=txs["failed"]).payload["data"]
    assert (native["standard"], native["value_raw"], native["status"]) == ("native", "7", "confirmed")
    payload = WalletActivity.objects.get(kind="internal", tx_hash=txs["via"]).payload
    assert payload["type"] == "transaction" and payload["data"]["standard"] == "internal"
    assert (payload["data"]["call_type"], payload["data"]["trace_address"]) == ("CALL", [0, 0])
    # The balances they moved are followed too.
    assert WalletActivity.objects.filter(kind="balance", address=a2, token="").exists()
    health = chains_health()["chains"]["31337"]
    assert health["internal_transfers"] == "recorded from debug_traceBlockByNumber"

    # A re-scan of the same blocks writes nothing twice.
    count = WalletActivity.objects.count()
    ChainCursor.objects.update(block_number=result.cursor_before, block_hash=anvil_hash(anvil, result.cursor_before))
    assert chain_scan(chain_id=31337).error == ""
    assert WalletActivity.objects.count() == count


def anvil_hash(anvil: Any, number: int) -> str:
    return str(Web3.to_hex(Web3(HTTPProvider(anvil.url)).eth.get_block(number)["hash"]))


def test_trace_block_gives_the_same_rows_as_the_call_tracer(anvil: Any, user: Any) -> None:
    proxy = FaultyRpc(anvil.url)
    try:
        proxy.faults.unsupported_methods = {"debug_traceBlockByNumber"}  # an Erigon-like node
        s = activity_scenario(anvil, user, proxy.url)
        assert chain_scan(chain_id=31337).error == ""
        assert ChainCursor.objects.get().trace_method == "trace_block"
        by_trace_block = internal_rows()
        assert len(by_trace_block) == 5
        # The same blocks again through debug_traceBlockByNumber: identical keys and values.
        WalletActivity.objects.all().delete()
        ChainCursor.objects.update(trace_method="", trace_checked_at=None)
        proxy.faults.unsupported_methods = {"trace_block"}
        first = int(Web3(HTTPProvider(anvil.url)).eth.get_transaction(s["txs"]["forward"])["blockNumber"])
        ChainCursor.objects.update(block_number=first - 1, block_hash=anvil_hash(anvil, first - 1))
        assert chain_scan(chain_id=31337).error == ""
        assert ChainCursor.objects.get().trace_method == "debug_traceBlockByNumber"
        assert internal_rows() == by_trace_block
    finally:
        proxy.stop()


def test_a_node_without_traces_says_so_in_the_chain_health(anvil: Any, user: Any) -> None:
    proxy = FaultyRpc(anvil.url)
    try:
        proxy.faults.unsupported_methods = {"debug_traceBlockByNumber", "trace_block"}
        activity_scenario(anvil, user, proxy.url)
        assert chain_scan(chain_id=31337).error == ""  # everything else is scanned
        assert not WalletActivity.objects.filter(kind="internal").exists()
        assert WalletActivity.objects.filter(kind="transaction").exists()
        cursor = ChainCursor.objects.get()
        assert cursor.trace_method == "unsupported" and "does not exist" in cursor.trace_detail
        health = chains_health()["chains"]["31337"]["internal_transfers"]
        assert health.startswith("unsupported: the node has no call traces (debug_traceBlockByNumber: the method")
        # A transient failure of the method once detected stops the scan (nothing is skipped).
        ChainCursor.objects.update(trace_method="debug_traceBlockByNumber")
        proxy.faults.unsupported_methods = set()
        proxy.faults.error_methods = {"debug_traceBlockByNumber"}
        before = ChainCursor.objects.get().block_number
        c = Contracts(anvil.url)
        c.w3.eth.send_transaction({"from": c.accounts[0], "to": c.accounts[1], "value": 1})
        result = chain_scan(chain_id=31337)
        assert result.error == "rpc_error" and ChainCursor.objects.get().block_number == before
    finally:
        proxy.stop()


def test_the_in_process_evm_has_no_traces_and_says_so(evm: Any, chain: Any, user: Any) -> None:
    link(user, evm.accounts[1])
    evm.pay(0, 1, 5)
    assert chain_scan(chain_id=chain.chain_id).error == ""
    assert chains_health()["chains"][str(chain.chain_id)]["internal_transfers"] == (
        "unsupported: the node has no call traces (debug_traceBlockByNumber: the in-process EVM has no call "
        "traces; trace_block: the in-process EVM has no call traces)"
    )
    chain.traces = "off"
    chain.save()
    assert chains_health()["chains"][str(chain.chain_id)]["internal_transfers"] == "off (disabled for this chain)"


A, B, C = "0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "cc" * 20


def test_call_tracer_and_trace_block_walks_agree_and_skip_failed_subtrees() -> None:
    tx = "0x" + "11" * 32
    tree = {
        "type": "CALL", "from": A, "to": B, "value": "0x5",
        "calls": [
            {"type": "CALL", "from": B, "to": C, "value": "0x2"},  # index 1
            {"type": "CALL", "from": B, "to": A, "value": "0x1", "error": "execution reverted",  # index 2, failed
             "calls": [{"type": "CALL", "from": A, "to": C, "value": "0x9"}]},  # index 3, inside the failure
            {"type": "DELEGATECALL", "from": B, "to": C, "value": "0x7"},  # index 4: moves nothing
            {"type": "SELFDESTRUCT", "from": B, "to": A, "value": "0x3"},  # index 5
        ],
    }  # fmt: skip
    by_tracer = from_call_tracer([{"txHash": tx, "result": tree}])

    def call(path: list[int], frm: str, to: str, value: str, kind: str = "call", **extra: Any) -> dict[str, Any]:
        action = {"callType": kind, "from": frm, "to": to, "value": value}
        return {"transactionHash": tx, "traceAddress": path, "type": "call", "action": action, **extra}

    flat = [
        call([], A, B, "0x5"),
        call([0], B, C, "0x2"),
        call([1], B, A, "0x1", error="Reverted"),
        call([1, 0], A, C, "0x9"),
        call([2], B, C, "0x7", kind="delegatecall"),
        {"transactionHash": tx, "traceAddress": [3], "type": "suicide",
         "action": {"address": B, "refundAddress": A, "balance": "0x3"}},
    ]  # fmt: skip
    by_flat = from_trace_block(flat)
    assert [(t.index, t.sender, t.to, t.value, t.call_type) for t in by_tracer] == [
        (1, B, C, 2, "CALL"),
        (5, B, A, 3, "SELFDESTRUCT"),
    ]
    assert [(t.index, t.sender, t.to, t.value) for t in by_flat] == [
        (t.index, t.sender, t.to, t.value) for t in by_tracer
    ]


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        "x",
        [1, "x", {"txHash": 5}],
        [{"txHash": "0x1", "result": {"calls": [{"type": "CALL", "from": "nope", "value": "0xzz"}]}}],
    ],
)
def test_malformed_traces_are_skipped_not_raised(garbage: Any) -> None:
    assert from_call_tracer(garbage) == []
    assert from_trace_block(garbage) == []


def test_history_on_link_reads_internal_transfers_too(anvil: Any, user: Any) -> None:
    s = activity_scenario(anvil, user, anvil.url)
    assert chain_scan(chain_id=31337).error == ""  # detects the trace method
    live = internal_rows()
    WalletActivity.objects.filter(kind="internal").delete()
    first = int(Web3(HTTPProvider(anvil.url)).eth.get_transaction(s["txs"]["forward"])["blockNumber"])
    cursor = ChainCursor.objects.get().block_number
    WalletBackfill.objects.update(state="queued", from_block=first, next_block=first, to_block=cursor)
    assert backfill_run(chain_id=31337).error == ""
    assert internal_rows() == live
