"""API tokens of an app: created (value shown once), listed, revoked, and verified fast.

Tokens are 256-bit random strings (``clr_app_…``) stored only as SHA-256 hashes
(``clarion.crypto``). Device registration checks one on every request, so ``ApiTokenCache``
answers from memory: positive *and* negative answers are kept for ``ttl_seconds`` (bounded,
oldest evicted first), and concurrent misses for one key share a single database lookup.

Revocation takes effect at once in the process that revoked (the routes call
``invalidate()``) and within ``ttl_seconds`` (``CLARION_API_TOKEN_CACHE_SECONDS``) in every
other process.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update

from clarion.clock import Clock
from clarion.crypto import hash_token, new_token
from clarion.domain.apps import ApiTokenCreated, ApiTokenInfo, ApiTokenRead
from clarion.errors import InvalidInput, NotFound
from clarion.store import tables as t
from clarion.store.db import Database

TOKEN_PREFIX = "clr_app"
SHOWN_PREFIX_LENGTH = 12  # "clr_app_" + 4 random characters: tells tokens apart, reveals nothing
MAX_TOKEN_LENGTH = 200  # ours are 51 characters; a longer one cannot be ours
MAX_CACHE_ENTRIES = 10_000
_T = t.api_tokens
_A = t.apps


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything Clarion stores is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _to_read(row: Any) -> ApiTokenRead:
    return ApiTokenRead(id=row.id, app_id=row.app_id, name=row.name, prefix=row.prefix,
                        created_at=aware(row.created_at),
                        revoked_at=None if row.revoked_at is None else aware(row.revoked_at))


def _app_not_found(org_id: str, app_id: str) -> NotFound:
    return NotFound(f"app {app_id} does not exist in organization {org_id}",
                    fix=f"List the apps with `clarion apps list --org {org_id}`.")


def _check_name(name: str) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 200:
        raise InvalidInput("a token name must have 1 to 200 characters", field="name",
                           fix="Name the token after what uses it, e.g. \"backend-prod\".")
    return name


async def create_api_token(
    *, db: Database, clock: Clock, org_id: str, app_id: str, name: str = "default"
) -> ApiTokenCreated:
    """A new API token for the app; its value is in the answer and nowhere else, ever."""
    name = _check_name(name)
    value = new_token(TOKEN_PREFIX)
    read = ApiTokenRead(id=str(uuid.uuid4()), app_id=app_id, name=name,
                        prefix=value[:SHOWN_PREFIX_LENGTH], created_at=clock.now(),
                        revoked_at=None)
    async with db.write() as conn:
        app = (await conn.execute(select(_A.c.id).where(
            _A.c.id == app_id, _A.c.org_id == org_id))).first()
        if app is None:
            raise _app_not_found(org_id, app_id)
        await conn.execute(insert(_T).values(
            id=read.id, org_id=org_id, app_id=app_id, token_hash=hash_token(value),
            prefix=read.prefix, name=name, created_at=read.created_at))
    return ApiTokenCreated(token=read, value=value)


async def list_api_tokens(*, db: Database, org_id: str, app_id: str) -> list[ApiTokenRead]:
    """Every token of the app, revoked ones included (with ``revoked_at``), oldest first."""
    async with db.read() as conn:
        app = (await conn.execute(select(_A.c.id).where(
            _A.c.id == app_id, _A.c.org_id == org_id))).first()
        if app is None:
            raise _app_not_found(org_id, app_id)
        rows = (await conn.execute(
            select(_T.c.id, _T.c.app_id, _T.c.name, _T.c.prefix, _T.c.created_at,
                   _T.c.revoked_at)
            .where(_T.c.app_id == app_id, _T.c.org_id == org_id)
            .order_by(_T.c.created_at, _T.c.id))).all()
    return [_to_read(r) for r in rows]


async def revoke_api_token(
    *, db: Database, clock: Clock, org_id: str, app_id: str, token_id: str
) -> None:
    """Revoke a token (idempotent: revoking it again keeps the first revocation time)."""
    async with db.write() as conn:
        row = (await conn.execute(select(_T.c.revoked_at).where(
            _T.c.id == token_id, _T.c.app_id == app_id, _T.c.org_id == org_id))).first()
        if row is None:
            raise NotFound(f"API token {token_id} does not exist for app {app_id}",
                           fix=f"List the tokens with `clarion apps tokens list --org {org_id} "
                           f"--app {app_id}`.")
        if row.revoked_at is None:
            await conn.execute(update(_T).where(_T.c.id == token_id).values(
                revoked_at=clock.now()))


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
            row = (await conn.execute(select(_T.c.id, _T.c.app_id, _T.c.org_id).where(
                _T.c.token_hash == token_hash, _T.c.app_id == app_id,
                _T.c.revoked_at.is_(None)))).first()
        info = None if row is None else ApiTokenInfo(token_id=row.id, app_id=row.app_id,
                                                     org_id=row.org_id)
        if self._ttl > 0 and generation == self._generation:
            self._entries.pop(key, None)
            self._entries[key] = (self._clock.now().timestamp() + self._ttl, info)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return info
