"""A newly linked wallet gets its current balances at once, not only after its next transfer."""

from __future__ import annotations

from typing import Any

import pytest

from tests.wallets.conftest import Evm, frames, link
from wallets.models import Balance, Wallet
from wallets.rpc import RpcError
from wallets.scanning.scanner import chain_scan
from wallets.services.initial_balances import wallet_initial_balances

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.evm]


def balances(address: str) -> dict[str, tuple[int, str, int | None]]:
    rows = Balance.objects.filter(address=address).values_list("token", "amount", "symbol", "decimals")
    return {token: (int(amount), symbol, decimals) for token, amount, symbol, decimals in rows}


def test_linking_reads_native_and_known_token_balances_at_the_cursor(evm: Evm, chain: Any, user: Any) -> None:
    a1, a2, a3 = evm.accounts[1:4]
    token = evm.deploy("TestERC20", "Test Token", "TT", 6)
    other = evm.deploy("TestERC20", "Other", "OT", 2)
    link(user, a1)
    chain.start_block = evm.head + 1
    chain.save()
    evm.call(token.functions.mint(a1, 5_000_000), 0)
    evm.call(token.functions.mint(a2, 7_000_000), 0)  # a2 is not linked yet: no row for it
    evm.call(other.functions.mint(a1, 100), 0)
    assert chain_scan(chain_id=chain.chain_id).error == ""  # cursor, token metadata
    assert balances(a2) == {}

    link(user, a2)  # the task runs on commit (eager here, a worker in production)

    native = evm.w3.eth.get_balance(a2, block_identifier=chain.cursor.block_number)
    assert balances(a2) == {"": (native, "ETH", 18), token.address: (7_000_000, "TT", 6)}  # no OT: holds none
    snapshot = frames(a2)[-1]
    assert snapshot["type"] == "snapshot" and snapshot["address"] == a2
    assert {b["token"]: b["balance_raw"] for b in snapshot["balances"]} == {None: str(native), token.address: "7000000"}

    # A wallet with nothing but its native coin; and rows the scanner wrote are kept.
    link(user, a3)
    assert set(balances(a3)) == {""}
    before = balances(a1)
    wallet = Wallet.objects.get(user=user, address=a1)
    Balance.objects.filter(address=a1, token="").delete()
    assert wallet_initial_balances(wallet_id=wallet.pk) == 1  # only the missing native row
    after = balances(a1)
    assert after[token.address] == before[token.address] and after[other.address] == before[other.address]
    assert "" in after


def test_no_cursor_yet_means_nothing_to_read(evm: Evm, chain: Any, user: Any) -> None:
    wallet = link(user, evm.accounts[1])  # chain never scanned: its first scan starts at the head
    assert wallet_initial_balances(wallet_id=wallet.pk) == 0
    assert Balance.objects.count() == 0


def test_an_rpc_failure_does_not_fail_the_link(evm: Evm, chain: Any, user: Any, caplog: Any) -> None:
    assert chain_scan(chain_id=chain.chain_id).error == ""
    wallet = link(user, evm.accounts[2])
    Balance.objects.all().delete()

    class DownListener:
        def client(self, chain: Any) -> Any:
            raise RpcError("node unreachable")

    assert wallet_initial_balances(wallet_id=wallet.pk, listener=DownListener()) == 0  # type: ignore[arg-type]
    assert "node unreachable" in caplog.text
    assert Balance.objects.count() == 0
