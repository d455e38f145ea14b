"""VAPID (RFC 8292): the ``Authorization: vapid t=<JWT>, k=<public key>`` header.

The JWT is signed ES256 with the app's VAPID private key; its claims are ``aud`` (the origin of
the push service, RFC 8292 §2), ``exp`` (at most 24 h ahead, §2) and ``sub`` (a mailto: or
https: contact, §2.1). Signing costs ~80 µs, so one header is made per (audience, key, subject)
and reused for its lifetime: 12 h, renewed one hour before it expires.

Signing uses PyJWT with ``cryptography`` keys. pywebpush/py_vapid are not used: pywebpush
mutates the claims dict it is given and signs on every call.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from clarion.clock import Clock, SystemClock
from clarion.providers.webpush.crypto import b64url_decode, b64url_encode

TOKEN_LIFETIME_SECONDS = 12 * 3600  # RFC 8292 §2: exp MUST NOT be more than 24 h ahead
RENEW_BEFORE_SECONDS = 3600  # renew an hour before exp: push services' clocks drift
_DEFAULT_PORTS = {"https": 443, "http": 80}
_CACHE_LIMIT = 10_000  # entries before expired ones are swept


class InvalidVapidKey(ValueError):
    """The app's VAPID key cannot sign (missing, not P-256, or not the stored public key)."""


@dataclass(frozen=True, slots=True)
class VapidKey:
    private_key: ec.EllipticCurvePrivateKey
    public_key: str  # base64url uncompressed point: the k= of RFC 8292 §3.2


def load_vapid_key(private: str, *, public: str | None = None) -> VapidKey:
    """Load the raw 32-byte scalar in base64url (what Clarion stores) or a PEM EC key, and check
    that it belongs to ``public`` (the applicationServerKey browsers subscribed with)."""
    text = private.strip()
    try:
        if text.startswith("-----BEGIN"):
            loaded = serialization.load_pem_private_key(text.encode("utf-8"), password=None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                raise InvalidVapidKey("the VAPID private key is not an EC key")
            key = loaded
        else:
            raw = b64url_decode(text)
            if len(raw) != 32:
                raise InvalidVapidKey(f"the VAPID private key is {len(raw)} bytes, not 32")
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except (ValueError, TypeError, binascii.Error) as exc:
        if isinstance(exc, InvalidVapidKey):
            raise
        raise InvalidVapidKey(f"the VAPID private key cannot be read ({exc})") from exc
    if not isinstance(key.curve, ec.SECP256R1):
        raise InvalidVapidKey(f"the VAPID key is on {key.curve.name}; VAPID needs P-256")
    point = key.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    derived = b64url_encode(point)
    if public is not None and public.strip().rstrip("=") != derived:
        raise InvalidVapidKey("the stored VAPID public key does not belong to the private key")
    return VapidKey(private_key=key, public_key=derived)


def audience(endpoint: str) -> str:
    """The origin of a push endpoint (RFC 6454 serialisation: default port left out)."""
    parts = urlsplit(endpoint)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    port = parts.port
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class VapidHeaders:
    """Makes and caches ``Authorization`` values per (audience, public key, subject)."""

    def __init__(self, *, clock: Clock | None = None,
                 lifetime_seconds: int = TOKEN_LIFETIME_SECONDS,
                 renew_before_seconds: int = RENEW_BEFORE_SECONDS) -> None:
        self._clock = clock or SystemClock()
        self._lifetime = lifetime_seconds
        self._renew_before = renew_before_seconds
        self._cache: dict[tuple[str, str, str], tuple[str, float]] = {}
        self.signed = 0  # how many JWTs were signed (tests, metrics)

    def header(self, *, aud: str, key: VapidKey, subject: str) -> str:
        now = self._clock.now().timestamp()
        cache_key = (aud, key.public_key, subject)
        hit = self._cache.get(cache_key)
        if hit is not None and now < hit[1] - self._renew_before:
            return hit[0]
        exp = int(now) + self._lifetime
        token = jwt.encode({"aud": aud, "exp": exp, "sub": subject}, key.private_key,
                           algorithm="ES256", headers={"typ": "JWT"})
        value = f"vapid t={token}, k={key.public_key}"
        if len(self._cache) >= _CACHE_LIMIT:
            self._sweep(now)
        self._cache[cache_key] = (value, float(exp))
        self.signed += 1
        return value

    def _sweep(self, now: float) -> None:
        stale = [k for k, (_, exp) in self._cache.items() if now >= exp - self._renew_before]
        for k in stale:
            del self._cache[k]
        if len(self._cache) >= _CACHE_LIMIT:  # all fresh: start over rather than grow
            self._cache.clear()
