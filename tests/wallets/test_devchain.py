"""The local dev chain of `make run`: a real anvil, demo tokens and wallet, demo activity, real scans."""

from __future__ import annotations

import logging
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from realtime_project.embedded import start_companions
from tests.support.servers import ServerProcess, free_port, server_env
from tests.wallets.conftest import frames
from tests.wallets.nodes import rpc
from wallets.devchain import DEV_CHAIN_ID, start_dev_chain
from wallets.devchain.provision import DEMO_WALLET_LABEL, DEV_CHAIN_NAME, demo_username
from wallets.models import Chain, ChainCursor, Wallet, WalletActivity, WatchedTransaction
from wallets.services.chains import chain_register
from wallets.tasks import scan_chain

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.evm]


@pytest.fixture
def demo_user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(username=demo_username())


@pytest.fixture
def dev_chain_settings(settings: Any) -> Any:
    # The activity thread idles (one hour between transactions): the test steps it itself.
    settings.WALLETS = {"DEV_CHAIN": True, "DEV_CHAIN_PORT": free_port(), "DEV_CHAIN_ACTIVITY_INTERVAL": 3600}
    return settings


def _summary(row: WalletActivity) -> tuple[str, str | None, str | None]:
    data = row.payload["data"]
    return row.kind, data.get("standard"), data.get("status")


def test_dev_chain_links_the_demo_wallet_and_its_activity_is_scanned(dev_chain_settings: Any, demo_user: Any) -> None:
    dev = start_dev_chain()
    assert dev is not None
    restarted = None
    try:
        setup = dev.setup
        chain = Chain.objects.get(chain_id=DEV_CHAIN_ID)
        assert (chain.name, chain.rpc_url, chain.required_confirmations, chain.poll_interval, chain.enabled) == (
            DEV_CHAIN_NAME,
            dev.node.url,
            3,
            0.5,
            True,
        )
        wallet = Wallet.objects.get(user=demo_user)
        assert (wallet.address, wallet.verified, wallet.watch_only, wallet.label) == (
            setup.demo,
            True,
            False,
            DEMO_WALLET_LABEL,
        )
        assert list(wallet.chains.values_list("chain_id", flat=True)) == [DEV_CHAIN_ID]

        sent = [dev.activity.step(action) for action in ("receive_eth", "send_token", "approve", "mint_nft")]
        paid = dev.activity.step("send_eth", watch=True)
        failed = dev.activity.step("revert_eth")
        rpc(dev.node.url, "evm_mine")
        result = scan_chain(DEV_CHAIN_ID)
        assert result["error"] == "" and result["blocks"] >= 1

        rows = list(WalletActivity.objects.filter(address=setup.demo).order_by("id"))
        by_hash = {row.tx_hash: _summary(row) for row in rows if row.kind != "balance"}
        assert by_hash[sent[0].hash] == ("transaction", "native", "included")
        assert by_hash[sent[1].hash] == ("transaction", "erc20", "included")
        assert by_hash[sent[2].hash][0] == "approval"
        assert by_hash[sent[3].hash][0] == "nft" and rows[-1].payload["chain"] == DEV_CHAIN_ID
        assert by_hash[failed.hash] == ("transaction", "native", "failed")
        assert {row.payload["data"]["symbol"] for row in rows if row.kind == "balance"} >= {"ETH", "dUSD", "dGOLD"}
        # The seeding (the demo wallet's first tokens) is its first activity.
        assert any(row.payload["data"].get("symbol") == "dGOLD" for row in rows if row.kind == "transaction")
        # Published on the wallet's channel, as the dashboard receives them.
        published = {f["data"].get("hash") for f in frames(setup.demo)}
        assert {tx.hash for tx in sent} <= published

        assert failed.watched and WatchedTransaction.objects.get(hash=failed.hash).status == "failed"
        watched = WatchedTransaction.objects.get(hash=paid.hash)
        assert (watched.status, watched.confirmations, watched.required) == ("included", 1, 3)
        rpc(dev.node.url, "anvil_mine", ["0x2"])
        scan_chain(DEV_CHAIN_ID)
        watched.refresh_from_db()
        # At least 3: the dev chain also mines a block every 2 s on its own.
        assert watched.status == "confirmed" and watched.confirmations >= 3

        # A restart: a new node (another port), the same chain row, nothing left of the old node.
        restarted = start_dev_chain()
        assert restarted is not None and restarted.node.url != dev.node.url
        chain = Chain.objects.get(chain_id=DEV_CHAIN_ID)
        assert chain.rpc_url == restarted.node.url and chain.enabled
        assert not ChainCursor.objects.filter(chain=chain).exists()
        assert not WalletActivity.objects.filter(chain=chain).exists()
        assert not WatchedTransaction.objects.filter(chain=chain).exists()
        assert Wallet.objects.filter(user=demo_user).count() == 1
    finally:
        for running in (restarted, dev):
            if running is not None:
                running.stop()
    assert not dev.node.alive() and (restarted is None or not restarted.node.alive())
    assert Chain.objects.get(chain_id=DEV_CHAIN_ID).enabled is False  # nothing scans a stopped node


def test_missing_anvil_is_one_warning_and_the_server_goes_on(settings: Any, caplog: Any) -> None:
    settings.WALLETS = {"DEV_CHAIN": True, "DEV_CHAIN_ANVIL": "/nonexistent/anvil", "DEV_CHAIN_PORT": free_port()}
    # A dev chain row left by an earlier run must not be scanned at its dead URL.
    chain_register(chain_id=DEV_CHAIN_ID, name=DEV_CHAIN_NAME, rpc_url="http://127.0.0.1:9", start_block=1)
    with caplog.at_level(logging.INFO):
        assert start_companions() == []
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert "local dev chain not started" in message and "/nonexistent/anvil" in message and "npm ci" in message
    assert Chain.objects.get(chain_id=DEV_CHAIN_ID).enabled is False


def test_dev_chain_off_starts_nothing(settings: Any, caplog: Any) -> None:
    settings.WALLETS = {"DEV_CHAIN": False, "DEV_CHAIN_ANVIL": "/nonexistent/anvil"}
    with caplog.at_level(logging.INFO):
        assert start_dev_chain() is None
    assert caplog.records == [] and not Chain.objects.exists()


def _gone(pid: int) -> bool:
    """The process exited (a zombie waiting for a reaper counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not _gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.e2e
@pytest.mark.parametrize("how", ["ctrl-c", "sigkill"])
def test_serve_starts_the_dev_chain_and_leaves_no_anvil_behind(how: str, demo_user: Any) -> None:
    """`manage.py serve` in embedded mode runs anvil; Ctrl-C stops it, and so does the server's death."""
    env = server_env(
        extra={"EMBEDDED_SCHEDULER": "on", "WALLETS_DEV_CHAIN": "1", "WALLETS_DEV_CHAIN_PORT": str(free_port())}
    )
    server = ServerProcess(env, server="uvicorn")
    server.start()
    try:
        found = re.search(r"dev chain: anvil at (\S+) .*pid (\d+)\)", server.read_log())
        assert found, server.read_log()
        url, pid = found.group(1), int(found.group(2))
        assert int(rpc(url, "eth_chainId"), 16) == DEV_CHAIN_ID and not _gone(pid)
        assert Chain.objects.get(chain_id=DEV_CHAIN_ID).rpc_url == url
        assert Wallet.objects.filter(user=demo_user, label=DEMO_WALLET_LABEL).exists()
        if how == "ctrl-c":
            server.signal(signal.SIGINT)
            assert server.wait() == 0
        else:  # no clean-up code runs: the kernel tells anvil (PR_SET_PDEATHSIG)
            server.kill()
        assert _wait_gone(pid), f"anvil {pid} outlived the server"
    finally:
        server.kill()
    if how == "ctrl-c":
        assert "dev chain: anvil stopped" in server.read_log()
        server.assert_clean_log()
