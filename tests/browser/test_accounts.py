"""Accounts in real headless Chromium: sign in from the dashboard, land back on it
signed in (the socket's welcome names the user), sign out in another tab and see the
first tab's socket ended and anonymous again; sign up and confirm the address from the
mail (SMTP from `EMAIL_URL`, a local aiosmtpd server); Sign-In with Ethereum through
a browser wallet (EIP-1193) whose signatures are real (eth-account, through the page)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from eth_account import Account
from eth_account.messages import encode_defunct
from playwright.sync_api import Page, expect

from tests.browser.conftest import in_thread, screenshot, serve_bundle
from tests.support.smtp_server import smtp_server

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-dashboard-user-1"
WALLET_KEY = "0x" + "42" * 32


def welcome_user(page: Page) -> Any:
    return page.evaluate("() => window.__realtime.client.getStatus().user")


def wait_welcome(page: Page, user_id: int | None) -> None:
    page.wait_for_function(
        "(id) => { const s = window.__realtime.client.getStatus();"
        " return s.state === 'open' && (s.user ? s.user.id : null) === id; }",
        arg=user_id,
    )


def test_sign_in_from_the_dashboard_and_sign_out(
    live_server_factory: Any, redis_url: str, key_prefix: str, new_page: Any
) -> None:
    server = live_server_factory(server="uvicorn", redis=redis_url, key_prefix=key_prefix)
    user = in_thread(lambda: get_user_model().objects.create_user("dana", "dana@example.com", PASSWORD))
    page = new_page(server)
    wait_welcome(page, None)

    page.get_by_test_id("sign-in-link").click()
    expect(page).to_have_url(f"{server.http_url}/accounts/login/?next=/")
    expect(page.get_by_test_id("siwe-sign-in")).to_be_visible()
    screenshot(page, "accounts-sign-in")
    # The page wears the dashboard's colours (not allauth's unstyled defaults).
    assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") == "rgb(15, 20, 25)"

    page.fill("#id_login", "dana")
    page.fill("#id_password", PASSWORD)
    page.get_by_test_id("sign-in").click()
    expect(page).to_have_url(f"{server.http_url}/")
    expect(page.get_by_test_id("account-user")).to_have_text("dana")
    wait_welcome(page, user.pk)  # the socket opened with the new session is the user's

    # A second tab of the same browser signs out: the first tab's socket is ended by the
    # server (4401), comes back anonymous, and the page follows it.
    other = new_page(server, context=page.context)
    wait_welcome(other, user.pk)
    other.get_by_test_id("sign-out").click()
    expect(other).to_have_url(f"{server.http_url}/")
    expect(other.get_by_test_id("sign-in-link")).to_be_visible()
    wait_welcome(other, None)
    wait_welcome(page, None)
    assert page.evaluate("() => window.__realtime.client.getStatus().lastCloseCode") == 4401
    expect(page.get_by_test_id("sign-in-link")).to_be_visible()
    expect(page.get_by_test_id("signed-out-notice")).to_have_text("Your session ended")
    assert not page.js_errors  # type: ignore[attr-defined]


def test_sign_in_with_ethereum(
    live_server_factory: Any, redis_url: str, key_prefix: str, browser: Any, client_bundle: Any
) -> None:
    server = live_server_factory(server="uvicorn", redis=redis_url, key_prefix=key_prefix)
    account = Account.from_key(WALLET_KEY)
    signed: list[str] = []

    def personal_sign(message: str) -> str:
        signed.append(message)
        return "0x" + Account.sign_message(
            encode_defunct(text=message), private_key=WALLET_KEY
        ).signature.hex().removeprefix("0x")

    context = browser.new_context()
    try:
        serve_bundle(context, client_bundle)
        context.expose_function("walletSign", personal_sign)
        # A minimal EIP-1193 wallet: the page's code is the real one, the key signs in Python.
        context.add_init_script(
            "window.ethereum = { request: async ({method, params}) => {"
            f" if (method === 'eth_requestAccounts') return ['{account.address.lower()}'];"
            " if (method === 'eth_chainId') return '0x1';"
            " if (method === 'personal_sign') return await window.walletSign(params[0]);"
            " throw new Error('unsupported ' + method); } };"
        )
        page = context.new_page()
        page.goto(f"{server.http_url}/accounts/login/?next=/")
        page.get_by_test_id("siwe-sign-in").click()
        expect(page).to_have_url(f"{server.http_url}/")
        username = account.address.lower()
        expect(page.get_by_test_id("account-user")).to_have_text(username)
        (message,) = signed
        assert message.startswith(
            f"127.0.0.1:{server.port} wants you to sign in with your Ethereum account:\n{account.address}\n"
        )
        user_id = in_thread(lambda: get_user_model().objects.get(username=username).pk)
        wait_welcome(page, user_id)
    finally:
        context.close()


def test_sign_up_then_confirm_the_address_from_the_mail(
    live_server_factory: Any, redis_url: str, key_prefix: str, new_page: Any
) -> None:
    with smtp_server() as (mailbox, port):
        server = live_server_factory(
            server="uvicorn", redis=redis_url, key_prefix=key_prefix, extra={"EMAIL_URL": f"smtp://127.0.0.1:{port}"}
        )
        page = new_page(server)
        page.get_by_test_id("sign-in-link").click()
        page.get_by_test_id("sign-up").click()
        page.fill("#id_email", "nia@example.com")
        page.fill("#id_username", "nia")
        page.fill("#id_password1", PASSWORD)
        page.fill("#id_password2", PASSWORD)
        screenshot(page, "accounts-sign-up")
        page.locator("form button[type=submit]").last.click()
        expect(page).to_have_url(f"{server.http_url}/")
        expect(page.get_by_test_id("account-user")).to_have_text("nia")
        user_id = in_thread(lambda: get_user_model().objects.get(username="nia").pk)
        wait_welcome(page, user_id)

        (message,) = mailbox.messages  # sent before the sign-up answered
        assert message["To"] == "nia@example.com"
        body = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", body)
        assert link, body
    page.goto(link.group(0))
    page.locator("form button[type=submit]").last.click()

    def verified() -> bool:
        from allauth.account.models import EmailAddress

        return EmailAddress.objects.filter(user_id=user_id, email="nia@example.com", verified=True).exists()

    expect(page.locator("body")).to_contain_text("nia")
    assert in_thread(verified)
