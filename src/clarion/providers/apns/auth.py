"""APNs authentication: the provider token (ES256 JWT) cache and client-certificate contexts.

Token auth (Apple, "Establishing a token-based connection to APNs"): header
``{"alg": "ES256", "kid": <Key ID>}``, claims ``{"iss": <Team ID>, "iat": <now>}``. APNs
refuses a token older than one hour (``ExpiredProviderToken``) and one renewed more often than
every 20 minutes (``TooManyProviderTokenUpdates``), so there is ONE token per key, shared by
every connection, renewed after a random age between 20 and 50 minutes (random so that many
processes do not renew together). The only early renewal is the one that answers an
``ExpiredProviderToken``, and only if no one renewed the token in the meantime. Signing is
PyJWT's (on ``cryptography``).

Certificate auth (Apple, "Establishing a certificate-based connection to APNs"): the app's
certificate and key are loaded into an ``ssl.SSLContext``; ``ssl`` only loads them from files,
so they are written to a private temporary file (0600) that is deleted at once.
"""

from __future__ import annotations

import hashlib
import os
import random
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from clarion.providers.base import ProviderSettings, client_ssl_context

REFRESH_MIN_SECONDS = 20 * 60  # Apple: not more often than every 20 minutes
REFRESH_MAX_SECONDS = 50 * 60  # well inside Apple's 60-minute limit


class CredentialProblem(Exception):
    """The app's APNs credentials cannot be used at all (bad key, bad certificate)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class _Token:
    key: ec.EllipticCurvePrivateKey
    header: bytes  # b"bearer <jwt>"
    issued_at: float
    renew_at: float


def key_fingerprint(pem: str) -> str:
    return hashlib.sha256(pem.encode("utf-8")).hexdigest()[:16]


class ProviderTokens:
    """One ES256 provider token per (Team ID, Key ID, key), shared by all connections."""

    def __init__(self, *, clock: Callable[[], float] = time.time,
                 rng: Callable[[], float] = random.random) -> None:
        self._clock = clock
        self._rng = rng
        self._tokens: dict[tuple[str, str, str], _Token] = {}

    def header(self, team_id: str, key_id: str, signing_key: str) -> bytes:
        """The ``authorization`` header value; signs a new token only when due."""
        cache_key = (team_id, key_id, key_fingerprint(signing_key))
        token = self._tokens.get(cache_key)
        now = self._clock()
        if token is None:
            token = self._sign(team_id, key_id, _load_key(signing_key), now)
            self._tokens[cache_key] = token
        elif now >= token.renew_at:
            token = self._sign(team_id, key_id, token.key, now)
            self._tokens[cache_key] = token
        return token.header

    def renew_after_expired(self, team_id: str, key_id: str, signing_key: str,
                            used: bytes) -> bytes:
        """Answer to ``ExpiredProviderToken``: renew once, unless someone already did."""
        cache_key = (team_id, key_id, key_fingerprint(signing_key))
        token = self._tokens.get(cache_key)
        if token is None or token.header == used:
            key = token.key if token is not None else _load_key(signing_key)
            token = self._sign(team_id, key_id, key, self._clock())
            self._tokens[cache_key] = token
        return token.header

    def issued_at(self, team_id: str, key_id: str, signing_key: str) -> float | None:
        token = self._tokens.get((team_id, key_id, key_fingerprint(signing_key)))
        return None if token is None else token.issued_at

    def _sign(self, team_id: str, key_id: str, key: ec.EllipticCurvePrivateKey,
              now: float) -> _Token:
        iat = int(now)
        encoded = jwt.encode({"iss": team_id, "iat": iat}, key, algorithm="ES256",
                             headers={"kid": key_id})
        age = REFRESH_MIN_SECONDS + self._rng() * (REFRESH_MAX_SECONDS - REFRESH_MIN_SECONDS)
        return _Token(key=key, header=b"bearer " + encoded.encode("ascii"), issued_at=iat,
                      renew_at=iat + age)


def _load_key(pem: str) -> ec.EllipticCurvePrivateKey:
    fix = ("save the app's iOS configuration again with the content of the AuthKey_<KeyID>.p8 "
           "file from Apple Developer → Keys")
    try:
        key = serialization.load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError) as exc:
        raise CredentialProblem("InvalidSigningKey",
                                f"the APNs signing key does not load ({exc}): {fix}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve,
                                                                          ec.SECP256R1):
        raise CredentialProblem("InvalidSigningKey",
                                f"the APNs signing key is not an EC P-256 key: {fix}")
    return key


def certificate_context(settings: ProviderSettings, certificate_pem: str,
                        private_key_pem: str) -> ssl.SSLContext:
    """A TLS context presenting the app's push certificate, ALPN ``h2``."""
    ctx = client_ssl_context(settings, alpn=["h2"])
    fd, name = tempfile.mkstemp(prefix="clarion-apns-", suffix=".pem")  # mode 0600
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(certificate_pem.strip() + "\n" + private_key_pem.strip() + "\n")
        ctx.load_cert_chain(path)
    except (ssl.SSLError, ValueError, UnicodeError) as exc:
        raise CredentialProblem(
            "BadCertificate",
            f"the app's push certificate and private key do not load ({exc}): upload the .p12 "
            "again (certificate and its private key exported together)") from exc
    finally:
        path.unlink(missing_ok=True)
    return ctx
