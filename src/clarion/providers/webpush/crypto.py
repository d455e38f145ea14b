"""Web Push message encryption: RFC 8291 (aes128gcm content coding of RFC 8188).

The cipher work is done by ``http_ece`` (the Web Push libraries' reference implementation,
also used by pywebpush); this module only reads a subscription's keys and calls it the way
RFC 8291 §3-§4 asks: a fresh ephemeral P-256 key and a fresh 16-byte salt per message, the
browser's ``p256dh`` key as the ECDH peer, its ``auth`` secret, one record of 4096 octets.
Tests check it against the RFC's appendix A test vector byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass

import http_ece  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.asymmetric import ec

RECORD_SIZE = 4096  # RFC 8291 §4: the rs of the single record


class InvalidSubscription(ValueError):
    """The subscription's keys cannot be used to encrypt (a browser never makes such keys)."""


@dataclass(frozen=True, slots=True)
class SubscriptionKeys:
    p256dh: ec.EllipticCurvePublicKey  # the browser's ECDH public key (RFC 8291 §3.1)
    auth: bytes  # the 16-byte authentication secret (RFC 8291 §3.2)


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding (browsers omit it; some libraries keep it).
    Characters outside the alphabet are an error (the lenient default would drop them)."""
    text = text.strip().rstrip("=")
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def parse_subscription_keys(web_keys: Mapping[str, str] | None) -> SubscriptionKeys:
    """Read ``{"p256dh", "auth"}`` as ``PushSubscription.toJSON()`` gives them."""
    if not web_keys:
        raise InvalidSubscription("the subscription has no keys (p256dh and auth)")
    p256dh = web_keys.get("p256dh")
    auth = web_keys.get("auth")
    if not isinstance(p256dh, str) or not p256dh:
        raise InvalidSubscription("the subscription has no p256dh key")
    if not isinstance(auth, str) or not auth:
        raise InvalidSubscription("the subscription has no auth secret")
    try:
        point = b64url_decode(p256dh)
        secret = b64url_decode(auth)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSubscription(f"the subscription keys are not base64url ({exc})") from exc
    if len(point) != 65 or point[0] != 4:
        raise InvalidSubscription(
            f"p256dh is {len(point)} bytes; an uncompressed P-256 point has 65 starting 0x04")
    try:
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as exc:
        raise InvalidSubscription("p256dh is not a point on the P-256 curve") from exc
    if len(secret) != 16:
        raise InvalidSubscription(f"auth is {len(secret)} bytes; RFC 8291 requires 16")
    return SubscriptionKeys(p256dh=public, auth=secret)


def encrypt(plaintext: bytes, keys: SubscriptionKeys, *, salt: bytes | None = None,
            sender_key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    """The aes128gcm body for ``plaintext``. ``salt`` and ``sender_key`` are for the RFC's
    test vector only: in production both are fresh per message (RFC 8291 §3.4, §4)."""
    key = sender_key if sender_key is not None else ec.generate_private_key(ec.SECP256R1())
    body: bytes = http_ece.encrypt(
        plaintext,
        salt=salt if salt is not None else os.urandom(16),
        private_key=key,
        dh=keys.p256dh,
        auth_secret=keys.auth,
        version="aes128gcm",
        rs=RECORD_SIZE,
    )
    return body


def decrypt(body: bytes, *, private_key: ec.EllipticCurvePrivateKey, auth: bytes) -> bytes:
    """What the browser does (RFC 8291 §3.4): for tests and the emulator."""
    plaintext: bytes = http_ece.decrypt(body, private_key=private_key, auth_secret=auth,
                                        version="aes128gcm")
    return plaintext
