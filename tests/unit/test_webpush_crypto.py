"""RFC 8291 message encryption, checked against the RFC's appendix A test vector."""

from __future__ import annotations

import base64

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from clarion.providers.webpush.crypto import (
    InvalidSubscription,
    SubscriptionKeys,
    b64url_decode,
    b64url_encode,
    decrypt,
    encrypt,
    parse_subscription_keys,
)
from clarion.providers.webpush.payload import HEADER_BYTES, MAX_PLAINTEXT_BYTES, encrypted_size

pytestmark = pytest.mark.unit

# RFC 8291 appendix A (and §5): every value as the RFC prints it.
PLAINTEXT = b"When I grow up, I want to be a watermelon"
AS_PUBLIC = ("BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PB"
             "ru3jl7A8")
AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
UA_PUBLIC = ("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkN"
             "toIAiw4")
UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
SALT = "DGv6ra1nlYgDCS1FRnbzlw"
AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
ECDH_SECRET = "kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs"
CEK = "oIhVW04MRdy2XN9CiKLxTg"
NONCE = "4h_95klXJ5E_qnoN"
MESSAGE = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml"
    "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT"
    "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)


def _private(raw_b64: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(b64url_decode(raw_b64), "big"), ec.SECP256R1())


def _point(key: ec.EllipticCurvePrivateKey) -> str:
    return b64url_encode(key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


def test_rfc8291_keys_are_consistent() -> None:
    assert _point(_private(AS_PRIVATE)) == AS_PUBLIC
    assert _point(_private(UA_PRIVATE)) == UA_PUBLIC
    keys = parse_subscription_keys({"p256dh": UA_PUBLIC, "auth": AUTH})
    shared = _private(AS_PRIVATE).exchange(ec.ECDH(), keys.p256dh)
    assert b64url_encode(shared) == ECDH_SECRET


def test_rfc8291_appendix_a_encrypts_byte_for_byte() -> None:
    keys = parse_subscription_keys({"p256dh": UA_PUBLIC, "auth": AUTH})
    body = encrypt(PLAINTEXT, keys, salt=b64url_decode(SALT), sender_key=_private(AS_PRIVATE))
    assert b64url_encode(body) == MESSAGE
    assert body == b64url_decode(MESSAGE)


def test_rfc8291_content_key_and_nonce() -> None:
    cek, nonce = http_ece.derive_key(
        "encrypt", version="aes128gcm", salt=b64url_decode(SALT), key=None,
        private_key=_private(AS_PRIVATE), dh=b64url_decode(UA_PUBLIC),
        auth_secret=b64url_decode(AUTH), keyid=None)
    assert (b64url_encode(cek), b64url_encode(nonce)) == (CEK, NONCE)


def test_rfc8291_appendix_a_message_decrypts() -> None:
    plaintext = decrypt(b64url_decode(MESSAGE), private_key=_private(UA_PRIVATE),
                        auth=b64url_decode(AUTH))
    assert plaintext == PLAINTEXT


def test_header_layout_matches_rfc8291_section_4() -> None:
    body = b64url_decode(MESSAGE)
    assert body[:16] == b64url_decode(SALT)
    assert int.from_bytes(body[16:20], "big") == 4096  # rs
    assert body[20] == 65  # idlen
    assert b64url_encode(body[21:86]) == AS_PUBLIC  # keyid = the sender's public key
    assert len(body) == encrypted_size(len(PLAINTEXT)) == HEADER_BYTES + len(PLAINTEXT) + 17


def test_fresh_salt_and_key_per_message_round_trip() -> None:
    ua = ec.generate_private_key(ec.SECP256R1())
    auth = bytes(range(16))
    keys = parse_subscription_keys({"p256dh": _point(ua), "auth": b64url_encode(auth)})
    first, second = encrypt(PLAINTEXT, keys), encrypt(PLAINTEXT, keys)
    assert first[:16] != second[:16]  # salt
    assert first[21:86] != second[21:86]  # ephemeral sender key
    assert decrypt(first, private_key=ua, auth=auth) == PLAINTEXT
    assert decrypt(second, private_key=ua, auth=auth) == PLAINTEXT


def test_largest_plaintext_fits_4096_in_one_record() -> None:
    ua = ec.generate_private_key(ec.SECP256R1())
    keys = SubscriptionKeys(p256dh=ua.public_key(), auth=b"a" * 16)
    body = encrypt(b"x" * MAX_PLAINTEXT_BYTES, keys)
    assert len(body) == 4096
    assert len(encrypt(b"x" * (MAX_PLAINTEXT_BYTES + 1), keys)) == 4097


def test_padded_base64_keys_are_accepted() -> None:
    padded = base64.urlsafe_b64encode(b64url_decode(AUTH)).decode()
    assert padded.endswith("==")
    keys = parse_subscription_keys({"p256dh": UA_PUBLIC + "=", "auth": padded})
    assert keys.auth == b64url_decode(AUTH)


@pytest.mark.parametrize(("web_keys", "words"), [
    (None, "no keys"),
    ({}, "no keys"),
    ({"auth": AUTH}, "no p256dh"),
    ({"p256dh": UA_PUBLIC}, "no auth"),
    ({"p256dh": UA_PUBLIC[:40], "auth": AUTH}, "65"),
    ({"p256dh": "B" + "A" * 86, "auth": AUTH}, "not a point"),
    ({"p256dh": UA_PUBLIC, "auth": AUTH[:8]}, "16"),
    ({"p256dh": "!!!!", "auth": AUTH}, "base64url"),
    ({"p256dh": AS_PRIVATE, "auth": AUTH}, "65"),  # a private key pasted for the public one
])
def test_unusable_subscription_keys_are_refused(web_keys: dict[str, str] | None,
                                                words: str) -> None:
    with pytest.raises(InvalidSubscription, match=words):
        parse_subscription_keys(web_keys)


def test_decrypt_with_wrong_auth_fails() -> None:
    with pytest.raises(http_ece.ECEException):
        decrypt(b64url_decode(MESSAGE), private_key=_private(UA_PRIVATE), auth=b"\0" * 16)
