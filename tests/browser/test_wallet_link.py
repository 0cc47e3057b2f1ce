"""Linking a wallet from the dashboard in real headless Chromium: Sign-In with Ethereum
through an EIP-1193 provider injected into the page, backed by a real anvil node (its
accounts, its chain id, `personal_sign` with the account's anvil key), against a real
uvicorn gateway, PostgreSQL and Redis; then the wallet's activity, scanned from anvil,
reaches the panel. The errors a user meets (rejected in the wallet, wrong chain, an
expired challenge, no wallet at all) are shown plainly and link nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import in_thread, screenshot, serve_bundle
from tests.support.servers import ServerProcess
from tests.wallets import conftest as wallets_fixtures
from tests.wallets.nodes import Anvil, rpc

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

#: anvil's published account 1 (the wallet being linked) and account 0 (who pays it).
ACCOUNT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
PAYER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"

#: The test wallet: an EIP-1193 provider whose keys are anvil's (it forwards to the node,
#: which signs `personal_sign` with the account's key). `window.__testWallet` steers it as
#: a user would: refuse a request, switch chain, take long to sign.
PROVIDER = """
(() => {
  const rpcUrl = %(url)s;
  const control = { account: %(account)s, chainId: null, reject: [], holdSign: false, release: null, requests: [] };
  window.__testWallet = control;
  let id = 0;
  async function rpc(method, params) {
    const response = await fetch(rpcUrl, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params: params ?? [] }),
    });
    const body = await response.json();
    if (body.error) throw Object.assign(new Error(body.error.message), { code: body.error.code });
    return body.result;
  }
  window.ethereum = {
    isTestWallet: true,
    async request({ method, params }) {
      control.requests.push(method);
      if (control.reject.includes(method)) throw Object.assign(new Error("User rejected the request."), { code: 4001 });
      switch (method) {
        case "eth_requestAccounts":
        case "eth_accounts":
          return [control.account];
        case "eth_chainId":
          return control.chainId ?? rpc("eth_chainId");
        case "personal_sign":
          if (control.holdSign) await new Promise((resolve) => { control.release = resolve; });
          return rpc("personal_sign", params);
        default:
          return rpc(method, params);
      }
    },
    on() {},
    removeListener() {},
  };
})();
"""


anvil_node = wallets_fixtures.anvil_node  # one anvil for the module, as in tests/wallets


@pytest.fixture
def anvil_chain(anvil_node: Anvil) -> Iterator[Any]:
    """anvil registered as chain 31337, scanned from its next block; reverted afterwards."""
    from wallets.services.chains import chain_register

    snapshot = rpc(anvil_node.url, "evm_snapshot")
    head = int(rpc(anvil_node.url, "eth_blockNumber"), 16)
    chain = in_thread(
        chain_register,
        chain_id=31337,
        name="Local anvil",
        rpc_url=anvil_node.url,
        required_confirmations=2,
        start_block=head + 1,
    )
    yield chain
    rpc(anvil_node.url, "evm_revert", [snapshot])


@pytest.fixture
def server(live_server_factory: Any, redis_settings: Any, redis_url: str, key_prefix: str) -> ServerProcess:
    # Tasks the link enqueues (history, balances) go to a queue of this test's own
    # (removed with its prefix): this test runs the scan itself.
    extra = {"CELERY_QUEUE": f"{key_prefix}celery"}
    return live_server_factory(server="uvicorn", redis=redis_url, key_prefix=key_prefix, extra=extra)  # type: ignore[no-any-return]


@pytest.fixture
def wallet_page(
    browser: Browser, client_bundle: Any, anvil_node: Anvil, server: ServerProcess, signed_in_user: tuple[int, str]
) -> Iterator[Callable[[], Page]]:
    contexts: list[BrowserContext] = []

    def make() -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        serve_bundle(context, client_bundle)
        context.add_cookies([{"name": "sessionid", "value": signed_in_user[1], "url": server.http_url}])
        context.add_init_script(PROVIDER % {"url": json.dumps(anvil_node.url), "account": json.dumps(ACCOUNT)})
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{server.http_url}/")
        expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "open")
        page.js_errors = errors  # type: ignore[attr-defined]
        return page

    yield make
    for context in contexts:
        context.close()


def wallets_of(user_id: int) -> list[tuple[str, bool, list[int]]]:
    from wallets.models import Wallet

    return [
        (w.address, w.verified_at is not None, sorted(c.chain_id for c in w.chains.all()))
        for w in Wallet.objects.filter(user_id=user_id).prefetch_related("chains")
    ]


def link(page: Page) -> None:
    page.get_by_test_id("wallet-link-button").click()


def test_link_a_wallet_with_siwe_and_see_its_activity_live(
    anvil_chain: Any, wallet_page: Callable[[], Page], signed_in_user: tuple[int, str]
) -> None:
    from wallets.scanning.scanner import chain_scan

    user_id, _ = signed_in_user
    page = wallet_page()
    expect(page.get_by_text("No linked wallet yet.")).to_be_visible()
    link(page)
    status = page.get_by_test_id("wallet-link")
    expect(status).to_have_attribute("data-state", "done")
    linked = f"Linked {ACCOUNT[:8]}…{ACCOUNT[-4:]}: its activity appears below."
    expect(page.get_by_test_id("wallet-link-status")).to_have_text(linked)
    asked = page.evaluate("() => window.__testWallet.requests")
    assert asked == ["eth_requestAccounts", "eth_chainId", "personal_sign"]
    assert in_thread(wallets_of, user_id) == [(ACCOUNT, True, [31337])]
    # The panel subscribed to the new wallet's channel (the owner-only authoriser let it in).
    panel = page.get_by_test_id(f"wallet-{ACCOUNT}")
    expect(panel.get_by_text("No activity yet.")).to_be_visible()

    # Activity on the node reaches the panel: 1 ETH in, scanned, published, delivered.
    tx = rpc(anvil_chain.rpc_url, "eth_sendTransaction", [{"from": PAYER, "to": ACCOUNT, "value": hex(10**18)}])
    result = in_thread(chain_scan, chain_id=31337)
    assert result.error == "", result
    expect(panel.locator(".activity")).to_contain_text(f"tx {tx[:8]}…{tx[-4:]}")
    expect(panel.locator(".activity")).to_contain_text("balance ETH")
    screenshot(page, "wallet-linked")
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_rejected_wrong_chain_and_expired_challenge_are_plain_and_link_nothing(
    anvil_chain: Any, wallet_page: Callable[[], Page], signed_in_user: tuple[int, str]
) -> None:
    from wallets.models import WalletChallenge

    user_id, _ = signed_in_user
    page = wallet_page()
    box = page.get_by_test_id("wallet-link")
    message = page.get_by_test_id("wallet-link-status")

    # A browser without a wallet.
    page.evaluate("() => { window.__saved = window.ethereum; delete window.ethereum; }")
    link(page)
    expect(box).to_have_attribute("data-code", "no_provider")
    expect(message).to_have_text(
        "No browser wallet found: install or enable one (MetaMask, Rabby, …) and reload the page."
    )
    page.evaluate("() => { window.ethereum = window.__saved; }")

    # The user refuses to share an account, then refuses to sign.
    page.evaluate("() => { window.__testWallet.reject = ['eth_requestAccounts']; }")
    link(page)
    expect(box).to_have_attribute("data-code", "user_rejected")
    expect(message).to_have_text("You rejected the connection request in your wallet. Nothing was linked.")
    expect(message).to_have_attribute("role", "alert")
    page.evaluate("() => { window.__testWallet.reject = ['personal_sign']; }")
    link(page)
    expect(box).to_have_attribute("data-code", "user_rejected")
    expect(message).to_have_text("You rejected the signature request in your wallet. Nothing was linked.")
    assert in_thread(lambda: WalletChallenge.objects.filter(used_at__isnull=True).count()) == 1

    # The wallet is on Polygon, which this site does not follow: no challenge is asked for.
    page.evaluate("() => { window.__testWallet.reject = []; window.__testWallet.chainId = '0x89'; }")
    link(page)
    expect(box).to_have_attribute("data-code", "wrong_chain")
    expect(message).to_have_text(
        "Your wallet is on chain 137, which this site does not follow."
        " Switch your wallet to Local anvil (31337) and try again."
    )
    assert in_thread(lambda: WalletChallenge.objects.count()) == 1

    # The user signs after the challenge expired (the wallet held the request open).
    page.evaluate("() => { window.__testWallet.chainId = null; window.__testWallet.holdSign = true; }")
    link(page)
    expect(box).to_have_attribute("data-state", "busy")
    expect(message).to_contain_text("Sign the message in your wallet")
    page.wait_for_function("() => window.__testWallet.release !== null")
    past = timezone.now() - timedelta(seconds=1)
    in_thread(lambda: WalletChallenge.objects.filter(used_at__isnull=True).update(expires_at=past))
    page.evaluate("() => window.__testWallet.release()")
    expect(box).to_have_attribute("data-code", "challenge_expired")
    expect(message).to_have_text(
        "The sign-in request expired before your signature arrived. Try again and sign within a few minutes."
    )
    assert in_thread(wallets_of, user_id) == []
    assert page.get_by_test_id(f"wallet-{ACCOUNT}").count() == 0

    # Trying again works.
    page.evaluate("() => { window.__testWallet.holdSign = false; window.__testWallet.release = null; }")
    link(page)
    expect(box).to_have_attribute("data-state", "done")
    assert in_thread(wallets_of, user_id) == [(ACCOUNT, True, [31337])]
    expect(page.get_by_test_id(f"wallet-{ACCOUNT}")).to_be_visible()
    assert page.js_errors == []  # type: ignore[attr-defined]
