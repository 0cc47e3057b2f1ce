"""Sign-In with Ethereum as a second way into an account (issue #12, finding 1).

Real EIP-191 signatures made with eth-account's keys, checked by the server against the
EIP-4361 message it issued in this browser's session.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from eth_account import Account
from eth_account.messages import encode_defunct

from wallets.models import Wallet

pytestmark = pytest.mark.django_db

KEY = "0x" + "11" * 32
OTHER_KEY = "0x" + "22" * 32


def address_of(key: str) -> str:
    return str(Account.from_key(key).address)


def sign(message: str, key: str) -> str:
    return "0x" + Account.sign_message(encode_defunct(text=message), private_key=key).signature.hex().removeprefix("0x")


def challenge(client: Client, address: str, chain_id: int = 1) -> dict[str, Any]:
    response = client.post(
        "/accounts/siwe/challenge/", {"address": address, "chain_id": chain_id}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return response.json()  # type: ignore[no-any-return]


def login(client: Client, nonce: str, signature: str, next_url: str | None = None) -> Any:
    body = {"nonce": nonce, "signature": signature, **({"next": next_url} if next_url else {})}
    return client.post("/accounts/siwe/login/", body, content_type="application/json")


def session_user(client: Client) -> int | None:
    user = client.get("/").wsgi_request.user
    return int(user.pk) if user.is_authenticated else None


def test_unknown_address_creates_an_account_with_the_wallet_verified() -> None:
    client = Client()
    address = address_of(KEY)
    issued = challenge(client, address.lower(), chain_id=8453)
    message = issued["message"]
    assert message.startswith("testserver wants you to sign in with your Ethereum account:\n" + address + "\n")
    assert (
        "Chain ID: 8453" in message and f"Nonce: {issued['nonce']}" in message and "URI: http://testserver" in message
    )

    response = login(client, issued["nonce"], sign(message, KEY), next_url="/notifications/preferences/")
    assert response.status_code == 200, response.content
    assert response.json() == {"redirect": "/notifications/preferences/", "created": True}
    user = get_user_model().objects.get(pk=session_user(client))
    assert user.username == address.lower() and not user.has_usable_password()
    wallet = Wallet.objects.get(user=user)
    assert wallet.address == address and wallet.verified_at is not None and not wallet.watch_only

    # The next sign-in with the same wallet is the same account.
    again = Client()
    issued = challenge(again, address)
    assert login(again, issued["nonce"], sign(issued["message"], KEY)).json() == {"redirect": "/", "created": False}
    assert session_user(again) == user.pk
    assert get_user_model().objects.count() == 1


def test_existing_account_with_the_verified_wallet_signs_in(django_user_model: Any) -> None:
    alice = django_user_model.objects.create_user("alice", password="pw-alice-123456")
    Wallet.objects.create(user=alice, address=address_of(KEY), watch_only=False, verified_at="2026-01-01T00:00:00Z")
    # A watch-only link proves nothing: it does not sign anyone in as bob.
    bob = django_user_model.objects.create_user("bob", password="pw-bob-1234567")
    Wallet.objects.create(user=bob, address=address_of(KEY), watch_only=True)
    client = Client()
    issued = challenge(client, address_of(KEY))
    assert login(client, issued["nonce"], sign(issued["message"], KEY)).status_code == 200
    assert session_user(client) == alice.pk


def test_refusals_change_nothing(settings: Any, django_user_model: Any) -> None:
    client = Client()
    address = address_of(KEY)
    # Signed by another key.
    issued = challenge(client, address)
    wrong = login(client, issued["nonce"], sign(issued["message"], OTHER_KEY))
    assert wrong.status_code == 403 and wrong.json()["code"] == "signature_mismatch"
    # The challenge was used up by that attempt: a replay with the right signature fails.
    replay = login(client, issued["nonce"], sign(issued["message"], KEY))
    assert replay.status_code == 400 and replay.json()["code"] == "unknown_challenge"
    # A challenge from another browser's session is unknown here.
    theirs = challenge(Client(), address)
    assert login(client, theirs["nonce"], sign(theirs["message"], KEY)).json()["code"] == "unknown_challenge"
    # Garbage.
    issued = challenge(client, address)
    assert login(client, issued["nonce"], "0x1234").json()["code"] == "bad_signature"
    bad_address = client.post("/accounts/siwe/challenge/", {"address": "0x123"}, content_type="application/json")
    assert bad_address.status_code == 400 and bad_address.json()["code"] == "invalid_address"
    assert client.post("/accounts/siwe/challenge/", "[", content_type="application/json").status_code == 400
    assert client.get("/accounts/siwe/challenge/").status_code == 405
    # Sign-up closed: an unknown address gets no account.
    settings.ACCOUNTS_SIGNUP_OPEN = False
    issued = challenge(client, address)
    closed = login(client, issued["nonce"], sign(issued["message"], KEY))
    assert closed.status_code == 403 and closed.json()["code"] == "signup_closed"
    assert django_user_model.objects.count() == 0 and session_user(client) is None


def test_deactivated_account_and_ambiguous_address(django_user_model: Any) -> None:
    address = address_of(KEY)
    alice = django_user_model.objects.create_user("alice", password="pw-alice-123456", is_active=False)
    Wallet.objects.create(user=alice, address=address, watch_only=False, verified_at="2026-01-01T00:00:00Z")
    client = Client()
    issued = challenge(client, address)
    refused = login(client, issued["nonce"], sign(issued["message"], KEY))
    assert refused.status_code == 403 and session_user(client) is None
    assert django_user_model.objects.count() == 1  # no second account for a deactivated owner's wallet

    bob = django_user_model.objects.create_user("bob", password="pw-bob-1234567")
    Wallet.objects.create(user=bob, address=address, watch_only=False, verified_at="2026-01-01T00:00:00Z")
    issued = challenge(client, address)
    ambiguous = login(client, issued["nonce"], sign(issued["message"], KEY))
    assert ambiguous.status_code == 409 and ambiguous.json()["code"] == "ambiguous_address"
