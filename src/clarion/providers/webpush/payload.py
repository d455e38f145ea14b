"""What a browser receives and the RFC 8030 headers that steer its delivery.

The plaintext is the CIJ web payload, JSON: ``{"title", "body", "subtitle"?, "imageUrl"?,
"link"?, "originalLink"?, "trackingId", "data"?}`` (empty optional fields are left out;
``trackingId`` is always present, empty for a test send).

Web Push has no validate-only mode (FCM has ``validate_only``, APNs a background push): the dry
run used at registration sends a real message with ``TTL: 0`` and the payload
``{"dryRun": true}``. A push service drops a TTL-0 message at once when the browser is not
connected; when it is, the site's service worker gets a push event carrying ``dryRun`` and
should ignore it (Chrome may show its "site updated in the background" notice if it shows
nothing).

Size: push services only guarantee 4096 bytes of encrypted body (RFC 8030 §7.2, RFC 8291 §4).
An aes128gcm body is the 86-byte header (salt 16, record size 4, key id length 1, sender key
65), the plaintext, one padding delimiter byte and the 16-byte AEAD tag, in a single record:
at most 3993 bytes of plaintext.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import orjson

from clarion.domain.outcomes import Notification

DEFAULT_TTL_SECONDS = 2_419_200  # 4 weeks: what FCM keeps at most; Mozilla caps at 60 days
MAX_ENCRYPTED_BYTES = 4096  # RFC 8030 §7.2: a push service MUST accept at least 4096 octets
HEADER_BYTES = 16 + 4 + 1 + 65  # RFC 8291 §4: salt, rs, idlen, keyid (the sender's P-256 key)
RECORD_OVERHEAD = 1 + 16  # RFC 8188 padding delimiter + AEAD_AES_128_GCM tag
MAX_PLAINTEXT_BYTES = MAX_ENCRYPTED_BYTES - HEADER_BYTES - RECORD_OVERHEAD  # 3993
DRY_RUN_PAYLOAD = b'{"dryRun":true}'

# RFC 8030 §5.4: a Topic is at most 32 characters of the URL- and filename-safe base64 alphabet.
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
# RFC 8030 §5.3 urgencies; Clarion's priorities map onto two of them.
_URGENCY = {"high": "high", "normal": "normal"}


def build_payload(notification: Notification, *, dry_run: bool = False) -> bytes:
    """The JSON plaintext a browser's service worker receives (``event.data.json()``)."""
    if dry_run:
        return DRY_RUN_PAYLOAD
    body: dict[str, Any] = {"title": notification.title, "body": notification.body}
    for key, value in (("subtitle", notification.subtitle),
                       ("imageUrl", notification.image_url),
                       ("link", notification.link),
                       ("originalLink", notification.original_link)):
        if value:
            body[key] = value
    body["trackingId"] = notification.tracking_id or ""
    if notification.data:
        body["data"] = dict(notification.data)
    return orjson.dumps(body)


def encrypted_size(plaintext_bytes: int) -> int:
    """The aes128gcm body length for a plaintext sent as one record (RFC 8291 §4)."""
    return HEADER_BYTES + plaintext_bytes + RECORD_OVERHEAD


def bytes_over_limit(plaintext: bytes) -> int:
    """How many bytes the encrypted body would exceed the 4096 guaranteed ones by (0: fits)."""
    return max(0, encrypted_size(len(plaintext)) - MAX_ENCRYPTED_BYTES)


def ttl_header(notification: Notification, *, dry_run: bool = False) -> str:
    """RFC 8030 §5.2: TTL is mandatory; seconds the push service keeps an undelivered message."""
    if dry_run:
        return "0"
    ttl = notification.ttl_seconds
    if ttl is None:
        return str(DEFAULT_TTL_SECONDS)
    return str(max(0, int(ttl)))


def urgency_header(notification: Notification) -> str:
    """RFC 8030 §5.3: "high" wakes a sleeping device; "normal" lets it wait for a good moment."""
    return _URGENCY.get(notification.priority, "normal")


def topic_header(collapse_key: str | None) -> str | None:
    """RFC 8030 §5.4: a newer message with the same Topic replaces an undelivered older one.

    A collapse key that is not a valid Topic (too long, other characters) is mapped to a stable
    one: the first 32 characters of the base64url SHA-256 of the key, so that the same key
    always collapses the same messages.
    """
    if not collapse_key:
        return None
    if _TOPIC.fullmatch(collapse_key):
        return collapse_key
    digest = hashlib.sha256(collapse_key.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:32]
