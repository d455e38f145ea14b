"""The APNs provider token: one ES256 JWT per key, renewed after 20–50 minutes, never more."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from clarion.providers.apns.auth import CredentialProblem, ProviderTokens

pytestmark = pytest.mark.unit


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def test_token_has_apples_header_and_claims(key: ec.EllipticCurvePrivateKey) -> None:
    clock = Clock()
    header = ProviderTokens(clock=clock).header("TEAM123456", "KEY1234567", _pem(key))
    assert header.startswith(b"bearer ")
    token = header[7:].decode()
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": "KEY1234567",
                                                "typ": "JWT"}
    claims = jwt.decode(token, key.public_key(), algorithms=["ES256"])
    assert claims == {"iss": "TEAM123456", "iat": 1_700_000_000}


@pytest.mark.parametrize(("rng", "renew_minutes"), [(0.0, 20), (0.5, 35), (1.0, 50)])
def test_renewed_after_a_random_age_between_20_and_50_minutes(
        key: ec.EllipticCurvePrivateKey, rng: float, renew_minutes: int) -> None:
    clock = Clock()
    tokens = ProviderTokens(clock=clock, rng=lambda: rng)
    first = tokens.header("T", "K", _pem(key))
    clock.now += renew_minutes * 60 - 1
    assert tokens.header("T", "K", _pem(key)) == first
    clock.now += 1
    assert tokens.header("T", "K", _pem(key)) != first


def test_one_token_per_key(key: ec.EllipticCurvePrivateKey) -> None:
    tokens = ProviderTokens(clock=Clock())
    other = _pem(ec.generate_private_key(ec.SECP256R1()))
    a = tokens.header("T", "K", _pem(key))
    assert tokens.header("T", "K", _pem(key)) == a
    assert tokens.header("T", "K2", _pem(key)) != a
    assert tokens.header("T", "K", other) != a  # a rotated key under the same id


def test_expired_answer_renews_once_even_when_many_sends_saw_it(
        key: ec.EllipticCurvePrivateKey) -> None:
    clock = Clock()
    tokens = ProviderTokens(clock=clock)
    used = tokens.header("T", "K", _pem(key))
    clock.now += 5
    renewed = tokens.renew_after_expired("T", "K", _pem(key), used)
    assert renewed != used
    # A second send that used the old token does not renew again.
    clock.now += 5
    assert tokens.renew_after_expired("T", "K", _pem(key), used) == renewed
    assert tokens.header("T", "K", _pem(key)) == renewed


@pytest.mark.parametrize("pem", ["not a key", _pem(rsa.generate_private_key(65537, 2048)),
                                 _pem(ec.generate_private_key(ec.SECP384R1()))])
def test_unusable_keys_are_credential_problems(pem: str) -> None:
    with pytest.raises(CredentialProblem) as info:
        ProviderTokens().header("T", "K", pem)
    assert info.value.reason == "InvalidSigningKey"
    assert ".p8" in info.value.detail
