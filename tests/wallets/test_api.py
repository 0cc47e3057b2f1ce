"""The /api/wallets/ endpoints: link, sign-in-with-Ethereum verify, unlink, activity, transactions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from rest_framework.test import APIClient

from tests.wallets.conftest import Evm
from wallets.models import Chain, Wallet, WalletActivity, WalletChallenge, WatchedTransaction
from wallets.services.chains import chain_register

pytestmark = pytest.mark.django_db

GOOD = "0x52908400098527886E0F7030069857D2E4169EE7"  # EIP-55 test vector


@pytest.fixture
def api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def mainnet() -> Chain:
    return chain_register(chain_id=1, name="Ethereum", rpc_url="http://127.0.0.1:9/")


def test_link_watch_only_any_case_stored_checksummed(api: APIClient, user: Any, mainnet: Chain) -> None:
    reply = api.post(
        "/api/wallets/", {"address": GOOD.lower(), "label": "cold", "watch_only": True, "chains": [1]}, format="json"
    )
    assert reply.status_code == 201, reply.content
    body = reply.json()
    assert (body["address"], body["label"], body["chains"], body["watch_only"], body["verified"]) == (
        GOOD,
        "cold",
        [1],
        True,
        False,
    )
    again = api.post("/api/wallets/", {"address": GOOD.upper().replace("0X", "0x"), "watch_only": True}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "already_linked"
    listed = api.get("/api/wallets/").json()["wallets"]
    assert [w["address"] for w in listed] == [GOOD]


@pytest.mark.parametrize(
    "bad",
    [
        "0x123",
        "52908400098527886E0F7030069857D2E4169EE7",
        "0x52908400098527886E0F7030069857D2E4169EEG",
        "0x52908400098527886e0F7030069857D2E4169EE7",  # mixed case with a wrong checksum
        "vitalik.eth",
        "",
    ],
)
def test_invalid_addresses_are_refused(api: APIClient, bad: str) -> None:
    reply = api.post("/api/wallets/", {"address": bad, "watch_only": True}, format="json")
    assert reply.status_code == 400
    assert reply.json().get("code") == "invalid_address" or "address" in reply.json()
    assert not Wallet.objects.exists()


def test_unknown_chain_ids_are_refused(api: APIClient, mainnet: Chain) -> None:
    reply = api.post("/api/wallets/", {"address": GOOD, "watch_only": True, "chains": [1, 424242]}, format="json")
    assert reply.status_code == 404 and reply.json()["code"] == "unknown_chain"
    assert not Wallet.objects.exists()
    reply = api.post("/api/wallets/challenge/", {"address": GOOD, "chain": 424242}, format="json")
    assert reply.status_code == 404 and reply.json()["code"] == "unknown_chain"


def sign(account: Any, message: str) -> str:
    return "0x" + account.sign_message(encode_defunct(text=message)).signature.hex().removeprefix("0x")


def test_sign_in_with_ethereum_verifies_and_is_single_use(api: APIClient, user: Any, mainnet: Chain) -> None:
    account = Account.create()
    challenge = api.post(
        "/api/wallets/challenge/", {"address": account.address.lower(), "chain": 1}, format="json"
    ).json()
    message = challenge["message"]
    # The request's host (APIClient: testserver) is the domain the wallet checks (issue #12).
    assert message.startswith("testserver wants you to sign in with your Ethereum account:\n" + account.address + "\n")
    assert f"Nonce: {challenge['nonce']}" in message and "Chain ID: 1" in message and "Version: 1" in message
    reply = api.post(
        "/api/wallets/verify/",
        {"nonce": challenge["nonce"], "signature": sign(account, message), "label": "hot"},
        format="json",
    )
    assert reply.status_code == 200, reply.content
    assert (reply.json()["address"], reply.json()["verified"], reply.json()["watch_only"]) == (
        account.address,
        True,
        False,
    )
    replay = api.post(
        "/api/wallets/verify/", {"nonce": challenge["nonce"], "signature": sign(account, message)}, format="json"
    )
    assert replay.status_code == 400 and replay.json()["code"] == "challenge_used"


def test_verify_upgrades_a_watch_only_wallet(api: APIClient, mainnet: Chain) -> None:
    account = Account.create()
    api.post("/api/wallets/", {"address": account.address, "watch_only": True}, format="json")
    challenge = api.post("/api/wallets/challenge/", {"address": account.address, "chain": 1}, format="json").json()
    api.post(
        "/api/wallets/verify/",
        {"nonce": challenge["nonce"], "signature": sign(account, challenge["message"])},
        format="json",
    )
    wallet = Wallet.objects.get()
    assert wallet.verified and not wallet.watch_only


def test_signature_by_another_key_links_nothing(api: APIClient, mainnet: Chain) -> None:
    owner, thief = Account.create(), Account.create()
    challenge = api.post("/api/wallets/challenge/", {"address": owner.address, "chain": 1}, format="json").json()
    reply = api.post(
        "/api/wallets/verify/",
        {"nonce": challenge["nonce"], "signature": sign(thief, challenge["message"])},
        format="json",
    )
    assert reply.status_code == 403 and reply.json()["code"] == "signature_mismatch"
    assert not Wallet.objects.exists()
    # The nonce is spent even so: no second try with it.
    retry = api.post(
        "/api/wallets/verify/",
        {"nonce": challenge["nonce"], "signature": sign(owner, challenge["message"])},
        format="json",
    )
    assert retry.json()["code"] == "challenge_used"


@pytest.mark.parametrize("signature", ["0x1234", "0x" + "00" * 65, "0x" + "zz" * 65, "nope"])
def test_malformed_signatures(api: APIClient, mainnet: Chain, signature: str) -> None:
    challenge = api.post("/api/wallets/challenge/", {"address": GOOD, "chain": 1}, format="json").json()
    reply = api.post("/api/wallets/verify/", {"nonce": challenge["nonce"], "signature": signature}, format="json")
    assert reply.status_code == 400 and reply.json()["code"] == "bad_signature"
    assert not Wallet.objects.exists()


def test_expired_and_foreign_challenges(api: APIClient, mainnet: Chain, django_user_model: Any) -> None:
    account = Account.create()
    challenge = api.post("/api/wallets/challenge/", {"address": account.address, "chain": 1}, format="json").json()
    WalletChallenge.objects.update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    reply = api.post(
        "/api/wallets/verify/",
        {"nonce": challenge["nonce"], "signature": sign(account, challenge["message"])},
        format="json",
    )
    assert reply.json()["code"] == "challenge_expired"
    other = APIClient()
    other.force_authenticate(django_user_model.objects.create_user(username="other"))
    fresh = api.post("/api/wallets/challenge/", {"address": account.address, "chain": 1}, format="json").json()
    reply = other.post(
        "/api/wallets/verify/", {"nonce": fresh["nonce"], "signature": sign(account, fresh["message"])}, format="json"
    )
    assert reply.status_code == 404 and reply.json()["code"] == "unknown_challenge"
    assert not Wallet.objects.exists()


def test_unlink_only_your_own(api: APIClient, user: Any, django_user_model: Any) -> None:
    mine = Wallet.objects.create(user=user, address=GOOD)
    theirs = Wallet.objects.create(user=django_user_model.objects.create_user(username="x"), address=GOOD)
    assert api.delete(f"/api/wallets/{theirs.pk}/").status_code == 404
    assert api.delete(f"/api/wallets/{mine.pk}/").status_code == 204
    assert list(Wallet.objects.values_list("pk", flat=True)) == [theirs.pk]


def test_activity_is_cursor_paginated_newest_first_and_private(api: APIClient, user: Any, mainnet: Chain) -> None:
    Wallet.objects.create(user=user, address=GOOD)
    for n in range(5):
        WalletActivity.objects.create(
            chain=mainnet,
            address=GOOD,
            kind="transaction",
            block_number=n,
            block_hash=f"0x{n:064x}",
            tx_hash=f"0x{n:064x}",
            log_index=0,
            token="",
            timestamp=datetime.now(UTC),
            payload={"type": "transaction", "address": GOOD, "chain": 1, "data": {"block": n}, "timestamp": n},
        )
    page = api.get("/api/wallets/activity/", {"address": GOOD.lower(), "page_size": 2}).json()
    assert [r["data"]["block"] for r in page["results"]] == [4, 3]
    page2 = api.get(page["next"]).json()
    assert [r["data"]["block"] for r in page2["results"]] == [2, 1]
    assert page["results"][0]["type"] == "transaction" and "id" in page["results"][0]
    other = "0x" + "12" * 20
    assert api.get("/api/wallets/activity/", {"address": other}).json()["code"] == "forbidden"
    assert api.get("/api/wallets/activity/", {"address": "0xnope"}).json()["code"] == "invalid_address"
    assert api.get("/api/wallets/activity/", {"address": GOOD, "kind": "bogus"}).status_code == 400


def test_anonymous_is_refused(mainnet: Chain) -> None:
    assert APIClient().get("/api/wallets/").status_code in (401, 403)


def test_watch_a_transaction_and_read_its_status(api: APIClient, evm: Evm, chain: Chain) -> None:
    tx_hash = evm.pay(1, 2, 77)
    reply = api.post("/api/wallets/transactions/", {"chain": evm.chain_id, "hash": tx_hash}, format="json")
    assert reply.status_code == 201, reply.content
    assert (reply.json()["status"], reply.json()["hash"], reply.json()["value_raw"]) == ("pending", tx_hash, "77")
    status = api.get(f"/api/wallets/transactions/{evm.chain_id}/{tx_hash}/").json()
    assert status["from"] == evm.accounts[1] and status["required"] == 3
    assert api.get(f"/api/wallets/transactions/{evm.chain_id}/0x12/").json()["code"] == "invalid_tx_hash"
    assert api.get(f"/api/wallets/transactions/999/{tx_hash}/").json()["code"] == "unknown_chain"
    bad = api.post("/api/wallets/transactions/", {"chain": evm.chain_id, "hash": "0xabc"}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_tx_hash"
    unknown = api.post("/api/wallets/transactions/", {"chain": 5, "hash": tx_hash}, format="json")
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_chain"
    assert WatchedTransaction.objects.count() == 1
    assert api.delete(f"/api/wallets/transactions/{evm.chain_id}/{tx_hash}/").status_code == 204
    assert api.get(f"/api/wallets/transactions/{evm.chain_id}/{tx_hash}/").status_code == 404
