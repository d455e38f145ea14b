"""Unsubscribe links: ``/u/<token>`` names one person and one app, signed.

The token is base64url(app id ‖ person id, 16 bytes each ‖ first 16 bytes of HMAC-SHA256(key,
those 32 bytes)), with a key of its own (not the tracked links' key: a token of one kind can
never pass for the other). Opening the link shows a page asking to confirm; only the
confirmation (a POST) records the opt-out, so a mail or chat scanner that follows links does
not unsubscribe anyone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

_MAC_BYTES = 16
TOKEN_LENGTH = 64  # base64url of 48 bytes


def sign(key: bytes, app_id: str, person_id: str) -> str:
    raw = uuid.UUID(app_id).bytes + uuid.UUID(person_id).bytes
    mac = hmac.new(key, raw, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(raw + mac).decode("ascii")


def verify(key: bytes, token: str) -> tuple[str, str] | None:
    """(app id, person id) of a token, or None when it is malformed or forged."""
    if len(token) != TOKEN_LENGTH:
        return None
    try:
        blob = base64.urlsafe_b64decode(token)
    except (ValueError, TypeError):
        return None
    if len(blob) != 32 + _MAC_BYTES:
        return None
    raw, mac = blob[:32], blob[32:]
    if not hmac.compare_digest(mac, hmac.new(key, raw, hashlib.sha256).digest()[:_MAC_BYTES]):
        return None
    return str(uuid.UUID(bytes=raw[:16])), str(uuid.UUID(bytes=raw[16:]))


def unsubscribe_url(public_url: str, key: bytes, app_id: str, person_id: str) -> str:
    return f"{public_url.rstrip('/')}/u/{sign(key, app_id, person_id)}"
