"""Sign-In with Ethereum (EIP-4361) as a second way into an account.

The page asks for a challenge for the wallet's address, the wallet signs it
(`personal_sign`), and the signature comes back: the wallets app builds the message and
recovers the signer (`wallets.api`), allauth signs the user in (`perform_login`: its
signals, redirects and session handling, like a password sign-in). The challenge lives
in this browser's session and is single-use, so a signature is good once, here only.

Which account: the one that already proved this address (a verified wallet). An unknown
address creates a new account, with the wallet linked as verified, when sign-up is open
(`ACCOUNTS_SIGNUP_OPEN`); an address several accounts verified is refused (ambiguous).
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any

from allauth.account.utils import perform_login
from allauth.core import ratelimit
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from wallets import api as wallets_api

from .adapter import signup_open

SESSION_KEY = "siwe_login"
#: Seconds a sign-in challenge may be signed in.
CHALLENGE_TTL = 300
STATEMENT = "Sign in to Realtime markets. This request will not trigger a transaction or cost gas."
MAX_CHAIN_ID = 2**53


def _error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


def _body(request: HttpRequest) -> dict[str, Any] | None:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


@require_POST
def challenge(request: HttpRequest) -> JsonResponse:
    """`{"address", "chain_id"}` -> `{"nonce", "message"}`: the text the wallet signs."""
    body = _body(request)
    if body is None:
        return _error("bad_request", "send a JSON object", 400)
    if not ratelimit.consume(request, action="login"):
        return _error("rate_limited", "too many sign-in attempts; try again later", 429)
    try:
        address = wallets_api.checksum_address(str(body.get("address") or ""))
    except wallets_api.InvalidAddress as exc:
        return _error("invalid_address", str(exc), 400)
    chain_id = body.get("chain_id", 1)
    if type(chain_id) is not int or not 0 < chain_id < MAX_CHAIN_ID:
        return _error("bad_request", "chain_id must be a positive integer", 400)
    now = timezone.now().replace(microsecond=0)
    nonce = secrets.token_hex(12)
    host = request.get_host()
    message = wallets_api.build_siwe_message(
        domain=host,
        address=address,
        statement=STATEMENT,
        uri=f"{request.scheme}://{host}",
        chain_id=chain_id,
        nonce=nonce,
        issued_at=now,
        expires_at=now + timedelta(seconds=CHALLENGE_TTL),
    )
    request.session[SESSION_KEY] = {
        "nonce": nonce,
        "address": address,
        "message": message,
        "expires": (now + timedelta(seconds=CHALLENGE_TTL)).timestamp(),
    }
    return JsonResponse({"nonce": nonce, "message": message})


@require_POST
def login(request: HttpRequest) -> JsonResponse:
    """`{"nonce", "signature", "next"?}` -> signed in, `{"redirect": url}`."""
    body = _body(request)
    if body is None:
        return _error("bad_request", "send a JSON object", 400)
    pending = request.session.pop(SESSION_KEY, None)  # single use, whatever the outcome
    if not isinstance(pending, dict) or pending.get("nonce") != body.get("nonce"):
        return _error("unknown_challenge", "no such sign-in challenge in this browser; ask for a new one", 400)
    if pending["expires"] <= timezone.now().timestamp():
        return _error("challenge_expired", "this challenge expired; ask for a new one", 400)
    try:
        signer = wallets_api.recover_siwe_signer(pending["message"], body.get("signature"))
    except wallets_api.BadSiweSignature as exc:
        return _error("bad_signature", str(exc), 400)
    if signer != pending["address"]:
        return _error("signature_mismatch", "the message was not signed by this address", 403)
    owners = wallets_api.verified_owner_ids(address=signer)
    if len(owners) > 1:
        return _error("ambiguous_address", "several accounts verified this address; sign in with a password", 409)
    signup = not owners
    if signup:
        if not signup_open():
            return _error("signup_closed", "no account has verified this address, and sign-up is closed", 403)
        user = _create_account(signer)
    else:
        user = get_user_model().objects.get(pk=owners[0])
    next_url = body.get("next")
    if not isinstance(next_url, str) or not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = None
    response = perform_login(request, user, email_verification="none", redirect_url=next_url, signup=signup)
    if not request.user.is_authenticated:  # an inactive account or a stage allauth stopped at
        return _error("login_refused", "this account cannot sign in", 403)
    return JsonResponse({"redirect": response.get("Location", "/"), "created": signup})


def _create_account(address: str) -> Any:
    """A new account named after the address (no password: signing in is by wallet)."""
    users = get_user_model()
    base = address.lower()
    for attempt in range(5):
        username = base if attempt == 0 else f"{base}-{secrets.token_hex(2)}"
        try:
            with transaction.atomic():
                user = users.objects.create_user(username=username)  # an unusable password
                wallets_api.link_verified_wallet(user.pk, address)
            return user
        except IntegrityError:
            continue
    raise RuntimeError("could not name the new account")
