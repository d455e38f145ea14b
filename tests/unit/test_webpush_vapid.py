"""VAPID (RFC 8292): key loading, audience, the signed header and its cache."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from clarion.clock import FrozenClock
from clarion.providers.webpush.crypto import b64url_decode, b64url_encode
from clarion.providers.webpush.vapid import (
    InvalidVapidKey,
    VapidHeaders,
    audience,
    load_vapid_key,
)

pytestmark = pytest.mark.unit

SUBJECT = "mailto:ops@example.com"


def _raw(key: ec.EllipticCurvePrivateKey) -> str:
    return b64url_encode(key.private_numbers().private_value.to_bytes(32, "big"))


def _public(key: ec.EllipticCurvePrivateKey) -> str:
    return b64url_encode(key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


def _parse(header: str) -> tuple[str, str]:
    scheme, _, rest = header.partition(" ")
    assert scheme == "vapid"
    params = dict(p.strip().split("=", 1) for p in rest.split(","))
    return params["t"], params["k"]


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def test_raw_and_pem_keys_load_to_the_same_public_key(key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    assert load_vapid_key(_raw(key)).public_key == _public(key)
    assert load_vapid_key(pem, public=_public(key)).public_key == _public(key)


@pytest.mark.parametrize("bad", ["", "abc", "A" * 50, "-----BEGIN PRIVATE KEY-----\nxx\n"])
def test_unreadable_private_keys_are_refused(bad: str) -> None:
    with pytest.raises(InvalidVapidKey):
        load_vapid_key(bad)


def test_a_public_key_of_another_pair_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidVapidKey, match="does not belong"):
        load_vapid_key(_raw(key), public=_public(other))


def test_non_p256_keys_are_refused() -> None:
    pem = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    with pytest.raises(InvalidVapidKey, match="P-256"):
        load_vapid_key(pem)


@pytest.mark.parametrize(("endpoint", "aud"), [
    ("https://fcm.googleapis.com/fcm/send/abc", "https://fcm.googleapis.com"),
    ("https://Updates.Push.Services.Mozilla.com:443/wpush/v2/x",
     "https://updates.push.services.mozilla.com"),
    ("http://127.0.0.1:8093/push/x?y=1", "http://127.0.0.1:8093"),
    ("http://localhost:80/push/x", "http://localhost"),
    ("https://[::1]:8443/push/x", "https://[::1]:8443"),
])
def test_audience_is_the_origin(endpoint: str, aud: str) -> None:
    assert audience(endpoint) == aud


def test_header_is_a_valid_es256_jwt_with_rfc8292_claims(
        key: ec.EllipticCurvePrivateKey) -> None:
    clock = FrozenClock()
    vapid = load_vapid_key(_raw(key))
    header = VapidHeaders(clock=clock).header(aud="https://push.example", key=vapid,
                                              subject=SUBJECT)
    token, k = _parse(header)
    assert k == _public(key)
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    claims = jwt.decode(token, ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), b64url_decode(k)), algorithms=["ES256"], audience="https://push.example",
        options={"verify_exp": False})
    now = int(clock.now().timestamp())
    assert claims == {"aud": "https://push.example", "exp": now + 12 * 3600, "sub": SUBJECT}


def test_header_is_cached_per_audience_and_renewed_before_expiry(
        key: ec.EllipticCurvePrivateKey) -> None:
    clock = FrozenClock()
    vapid = load_vapid_key(_raw(key))
    headers = VapidHeaders(clock=clock)
    first = headers.header(aud="https://a.example", key=vapid, subject=SUBJECT)
    assert headers.header(aud="https://a.example", key=vapid, subject=SUBJECT) is first
    other = headers.header(aud="https://b.example", key=vapid, subject=SUBJECT)
    assert other != first
    assert headers.signed == 2
    clock.advance(10 * 3600)  # 11 h < 12 h - 1 h: still reused
    assert headers.header(aud="https://a.example", key=vapid, subject=SUBJECT) is first
    clock.advance(3600 + 1)  # within the last hour of its life: renewed
    renewed = headers.header(aud="https://a.example", key=vapid, subject=SUBJECT)
    assert renewed != first
    assert headers.signed == 3


def test_another_key_or_subject_gets_its_own_header(key: ec.EllipticCurvePrivateKey) -> None:
    headers = VapidHeaders(clock=FrozenClock())
    one = load_vapid_key(_raw(key))
    two = load_vapid_key(_raw(ec.generate_private_key(ec.SECP256R1())))
    a = headers.header(aud="https://p.example", key=one, subject=SUBJECT)
    b = headers.header(aud="https://p.example", key=two, subject=SUBJECT)
    c = headers.header(aud="https://p.example", key=one, subject="https://example.com/contact")
    assert len({a, b, c}) == 3
    assert _parse(b)[1] == two.public_key
