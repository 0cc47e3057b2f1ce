"""EIP-4361 ("Sign-In with Ethereum") messages: build one, recover who signed it (pure)."""

from __future__ import annotations

from datetime import datetime

from eth_account import Account
from eth_account.messages import encode_defunct

#: 65-byte r||s||v signatures as wallets return them from `personal_sign`.
SIGNATURE_HEX_LENGTH = 132


class BadSignature(ValueError):
    code = "bad_signature"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def build_message(
    *,
    domain: str,
    address: str,
    statement: str,
    uri: str,
    chain_id: int,
    nonce: str,
    issued_at: datetime,
    expires_at: datetime,
) -> str:
    """The exact text a wallet shows and signs (EIP-4361 layout, version 1)."""
    return (
        f"{domain} wants you to sign in with your Ethereum account:\n"
        f"{address}\n"
        f"\n"
        f"{statement}\n"
        f"\n"
        f"URI: {uri}\n"
        f"Version: 1\n"
        f"Chain ID: {chain_id}\n"
        f"Nonce: {nonce}\n"
        f"Issued At: {_iso(issued_at)}\n"
        f"Expiration Time: {_iso(expires_at)}"
    )


def recover_signer(message: str, signature: object) -> str:
    """The checksummed address that signed `message` (EIP-191 personal_sign); BadSignature if malformed."""
    if not isinstance(signature, str) or len(signature) != SIGNATURE_HEX_LENGTH or not signature.startswith("0x"):
        raise BadSignature("signature must be 0x followed by 130 hex digits (65 bytes)")
    try:
        bytes.fromhex(signature[2:])
        return str(Account.recover_message(encode_defunct(text=message), signature=signature))
    except Exception as exc:  # eth-keys raises several types for invalid curve points / v values
        raise BadSignature(f"signature cannot be recovered: {type(exc).__name__}") from None
