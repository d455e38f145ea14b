"""Verifying API tokens fast: device registration checks one on every request.

Tokens are 256-bit random strings (``clr_app_…``) stored only as SHA-256 hashes
(``clarion.crypto``). ``ApiTokenCache`` answers from memory: positive *and* negative answers
are kept for ``ttl_seconds`` (bounded, oldest evicted first), and concurrent misses for one key
share a single database lookup.

Revocation takes effect at once in the process that revoked (``Apps.revoke_token`` and
``Apps.delete`` call ``invalidate()``) and within ``ttl_seconds``
(``CLARION_API_TOKEN_CACHE_SECONDS``) in every other process.

Hand-written: an ``OrderedDict`` LRU costs well under a microsecond per hit, the only thing
that matters on this path.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from clarion.clock import Clock
from clarion.crypto import hash_token
from clarion.domain.apps import ApiTokenInfo
from clarion.store import apps as store
from clarion.store.db import Database

TOKEN_PREFIX = "clr_app"
SHOWN_PREFIX_LENGTH = 12  # "clr_app_" + 4 random characters: tells tokens apart, reveals nothing
MAX_TOKEN_LENGTH = 200  # ours are 51 characters; a longer one cannot be ours
MAX_CACHE_ENTRIES = 10_000

_Key = tuple[str, str]  # (sha256 of the token, app id)


class ApiTokenCache:
    """Verifies API tokens without a database round trip per request (see module doc)."""

    def __init__(self, db: Database, clock: Clock, *, ttl_seconds: float,
                 max_entries: int = MAX_CACHE_ENTRIES) -> None:
        self._db = db
        self._clock = clock
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: OrderedDict[_Key, tuple[float, ApiTokenInfo | None]] = OrderedDict()
        self._inflight: dict[_Key, asyncio.Future[ApiTokenInfo | None]] = {}
        self._generation = 0  # bumped by invalidate(): lookups begun before it are not kept

    async def verify(self, *, org_id: str, app_id: str, token: str) -> ApiTokenInfo | None:
        """The token's identity, or None when it is unknown, revoked, or not a token of
        ``app_id`` in ``org_id``."""
        if not token or len(token) > MAX_TOKEN_LENGTH or not app_id or len(app_id) > 36:
            return None
        key = (hash_token(token), app_id)
        hit = self._entries.get(key)
        if hit is not None and hit[0] > self._clock.now().timestamp():
            info = hit[1]
        else:
            info = await self._lookup(key)
        if info is None or info.org_id != org_id:
            return None
        return info

    def invalidate(self) -> None:
        """Forget every answer (call after revoking a token or deleting an app)."""
        self._entries.clear()
        self._inflight.clear()
        self._generation += 1

    def __len__(self) -> int:
        return len(self._entries)

    async def _lookup(self, key: _Key) -> ApiTokenInfo | None:
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._load(key, self._generation))
            self._inflight[key] = pending
            pending.add_done_callback(lambda f: self._forget(key, f))
        # shield: one caller giving up (client gone) must not cancel the others' lookup.
        return await asyncio.shield(pending)

    def _forget(self, key: _Key, future: asyncio.Future[ApiTokenInfo | None]) -> None:
        if self._inflight.get(key) is future:
            del self._inflight[key]
        if not future.cancelled():
            future.exception()  # retrieved: a failed lookup nobody awaits any more is not logged

    async def _load(self, key: _Key, generation: int) -> ApiTokenInfo | None:
        token_hash, app_id = key
        async with self._db.read() as conn:
            info = await store.active_api_token(conn, token_hash, app_id)
        if self._ttl > 0 and generation == self._generation:
            self._entries.pop(key, None)
            self._entries[key] = (self._clock.now().timestamp() + self._ttl, info)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return info
