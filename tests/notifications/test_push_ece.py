"""RFC 8291 encryption of one push message, byte for byte (no server, no database)."""

from __future__ import annotations

import base64
import os

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notifications.push import ece

# RFC 8291 Appendix A: the published example (test data of the RFC, not credentials).
PLAINTEXT = b"When I grow up, I want to be a watermelon"
AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
UA_PUBLIC = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
SALT = "DGv6ra1nlYgDCS1FRnbzlw"
MESSAGE = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6Tlz"
    "AC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)


def b64d(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def private(value: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(b64d(value), "big"), ec.SECP256R1())


def test_the_rfc_8291_example_byte_for_byte() -> None:
    body = ece.encrypt(PLAINTEXT, ece.receiver(UA_PUBLIC, AUTH), salt=b64d(SALT), server_key=private(AS_PRIVATE))
    assert b64e(body) == MESSAGE
    # Header (RFC 8188 §2.1): salt, rs = 4096, idlen = 65, the sender's public key.
    assert body[:16] == b64d(SALT) and int.from_bytes(body[16:20], "big") == 4096 and body[20] == 65
    # And what the browser does with it: decrypt with its private key and auth secret.
    assert http_ece.decrypt(body, private_key=private(UA_PRIVATE), auth_secret=b64d(AUTH)) == PLAINTEXT


def test_every_message_has_its_own_ephemeral_key_and_salt() -> None:
    ua = ec.generate_private_key(ec.SECP256R1())
    raw = ua.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    auth = os.urandom(16)
    to = ece.receiver(b64e(raw), b64e(auth))
    first, second = ece.encrypt(b'{"title":"a"}', to), ece.encrypt(b'{"title":"a"}', to)
    assert first[:16] != second[:16]  # salt
    assert first[21:86] != second[21:86]  # ephemeral public key (the key id)
    for body in (first, second):
        assert http_ece.decrypt(body, private_key=ua, auth_secret=auth) == b'{"title":"a"}'
    # A byte changed in transit: the browser cannot decrypt it (AES-GCM tag).
    tampered = first[:-1] + bytes([first[-1] ^ 1])
    with pytest.raises(http_ece.ECEException, match="InvalidTag"):
        http_ece.decrypt(tampered, private_key=ua, auth_secret=auth)


@pytest.mark.parametrize(
    ("p256dh", "auth", "why"),
    [
        ("!!!", AUTH, "base64url"),
        ("AAAA", AUTH, "uncompressed"),
        ("BA" + "A" * 85, AUTH, "not a point"),  # 65 bytes starting 0x04, but off the curve
        (UA_PUBLIC, "c2hvcnQ", "16 bytes"),
    ],
)
def test_unusable_keys_are_refused_before_anything_is_sent(p256dh: str, auth: str, why: str) -> None:
    with pytest.raises(ece.BadReceiverKeys, match=why):
        ece.receiver(p256dh, auth)
