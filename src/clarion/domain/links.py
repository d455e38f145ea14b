"""Tracked links: the URL a device opens is Clarion's, signed, and names one delivery.

``/l/<token>`` where the token is base64url(delivery id as 16 bytes ‖ first 16 bytes of
HMAC-SHA256(link key, those bytes)). It carries no target URL, so it can never be turned into
an open redirect: the target is looked up from the delivery's send. A token that does not verify
is refused before any database read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

_MAC_BYTES = 16
TOKEN_LENGTH = 43  # base64url of 32 bytes, without padding


def sign(key: bytes, delivery_id: str) -> str:
    raw = uuid.UUID(delivery_id).bytes
    mac = hmac.new(key, raw, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(raw + mac).rstrip(b"=").decode("ascii")


def verify(key: bytes, token: str) -> str | None:
    """The delivery id a token names, or None when it is malformed or forged."""
    if len(token) != TOKEN_LENGTH:
        return None
    try:
        blob = base64.urlsafe_b64decode(token + "=")
    except (ValueError, TypeError):
        return None
    if len(blob) != 16 + _MAC_BYTES:
        return None
    raw, mac = blob[:16], blob[16:]
    if not hmac.compare_digest(mac, hmac.new(key, raw, hashlib.sha256).digest()[:_MAC_BYTES]):
        return None
    return str(uuid.UUID(bytes=raw))


def tracked_url(public_url: str, key: bytes, delivery_id: str) -> str:
    return f"{public_url.rstrip('/')}/l/{sign(key, delivery_id)}"
