"""Random ids: the text of version-4 (random) and version-7 (time-ordered) UUIDs, made fast.

``str(uuid.uuid4())`` reads 16 bytes with ``os.urandom`` (a system call) and builds a ``UUID``
object only to format it; the hot accept paths make one per request, and it was ~6 % of a
registration's CPU. ``new_id`` draws the same kernel randomness (``os.urandom``) in blocks of
4 KiB and formats the text directly. After a fork the child starts with a fresh block, so two
processes never hand out the same ids. The result is indistinguishable from ``uuid4()``'s.
"""

from __future__ import annotations

import os
import re

_BLOCK = 4096
_VARIANT = {f"{n:x}": "89ab"[n & 3] for n in range(16)}  # hex digit -> RFC 9562 variant digit
_buffer = b""
_offset = _BLOCK

_CANONICAL = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _reset() -> None:
    global _buffer, _offset
    _buffer, _offset = b"", _BLOCK


os.register_at_fork(after_in_child=_reset)


def new_id() -> str:
    """A random UUID (version 4, RFC 9562 variant) as canonical lower-case text."""
    global _buffer, _offset
    if _offset + 16 > len(_buffer):
        _buffer, _offset = os.urandom(_BLOCK), 0
    raw = _buffer[_offset:_offset + 16]
    _offset += 16
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def is_guid(value: str) -> bool:
    """Whether ``value`` is GUID text in the usual hyphenated 8-4-4-4-12 form (any case)."""
    return _CANONICAL.fullmatch(value) is not None


def canonical_guid(value: str) -> str | None:
    """``value`` as canonical lower-case GUID text if it is the usual hyphenated form, else
    None (callers fall back to ``uuid.UUID`` for the rarer forms: braces, urn:, no hyphens)."""
    return value.lower() if _CANONICAL.fullmatch(value) else None


def time_ordered_ids(n: int, now_ms: int) -> list[str]:
    """``n`` UUIDs of version 7 (RFC 9562): the millisecond time first, then 74 random bits.

    Delivery ids are the primary key, the apns-id and the tracked links' id. Time-ordered ids
    land next to each other in the primary-key index (a random UUID4 touches a random index
    page per row, more and more pages as the table grows) and a batch's updates find its rows
    on a few pages."""
    ts = f"{now_ms & 0xFFFF_FFFF_FFFF:012x}"
    head = f"{ts[:8]}-{ts[8:]}-7"
    rnd = os.urandom(10 * n).hex()
    return [f"{head}{rnd[i:i + 3]}-{_VARIANT[rnd[i + 3]]}{rnd[i + 4:i + 7]}-{rnd[i + 7:i + 19]}"
            for i in range(0, 20 * n, 20)]
