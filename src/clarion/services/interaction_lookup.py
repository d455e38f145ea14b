"""Which delivery a reported (trackingId, device token) pair names, answered fast.

Every device reports every notification, so this is the interaction API's hot path. Lookups
go through a small LRU cache of positive answers (apps report delivered, opened, then clicked
for the same delivery) and otherwise through a *batched* read: the lookups of concurrent
requests are collected for ``window`` seconds (~1 ms) and answered by ONE query
(``clarion.store.interactions.targets``).

Hand-written caches: an ``OrderedDict`` LRU costs well under a microsecond per hit, the only
thing that matters on this path (the same choice as ``ApiTokenCache``).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

from clarion.crypto import hash_token
from clarion.domain.interactions import Target, token_variants
from clarion.store import interactions as store
from clarion.store.db import Database

MAX_KEYS_PER_LOOKUP = 250  # ≤ 250 sends and ≤ 500 hashes: far below any parameter limit


class Lru:
    """A bounded mapping that forgets the least recently used entries; entries expire."""

    def __init__(self, size: int, ttl_seconds: float) -> None:
        self._size = size
        self._ttl = ttl_seconds
        self._data: OrderedDict[tuple[str, str], tuple[float, Target]] = OrderedDict()

    def get(self, key: tuple[str, str], now: float) -> Target | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        if hit[0] < now:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return hit[1]

    def put(self, key: tuple[str, str], value: Target, now: float) -> None:
        if self._size <= 0:
            return
        self._data[key] = (now + self._ttl, value)
        self._data.move_to_end(key)
        if len(self._data) > self._size:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class BatchedLookup:
    """Resolves (send id, device token) pairs, many concurrent ones per query."""

    def __init__(self, db: Database, *, window_seconds: float, cache: Lru) -> None:
        self._db = db
        self._window = window_seconds
        self._cache = cache
        self._waiting: dict[tuple[str, str], asyncio.Future[Target | None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self.queries = 0  # how many lookup queries ran (for tests and profiling)

    def cached(self, send_id: str, token: str) -> Target | None:
        """A known answer, without waiting (None: unknown, or not cached)."""
        return self._cache.get((send_id, token), time.monotonic())

    async def resolve(self, send_id: str, token: str) -> Target | None:
        key = (send_id, token)
        hit = self._cache.get(key, time.monotonic())
        if hit is not None:
            return hit
        fut = self._waiting.get(key)
        if fut is None:
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            self._waiting[key] = fut
            if len(self._waiting) >= MAX_KEYS_PER_LOOKUP:
                self._flush()
            elif self._timer is None:
                self._timer = loop.call_later(self._window, self._flush)
        # shield: one client going away must not cancel the lookup the others wait for.
        return await asyncio.shield(fut)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._waiting = self._waiting, {}
        if batch:
            task = asyncio.ensure_future(self._answer(batch))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _answer(self, batch: dict[tuple[str, str], asyncio.Future[Target | None]]) -> None:
        try:
            found = await self._query(list(batch))
        except Exception as exc:
            for fut in batch.values():
                if not fut.done():
                    fut.set_exception(exc)
                    fut.exception()  # retrieved: waiters that went away leave no log noise
            return
        now = time.monotonic()
        for key, fut in batch.items():
            target = found.get(key)
            if target is not None:
                self._cache.put(key, target, now)
            if not fut.done():
                fut.set_result(target)

    async def _query(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Target]:
        self.queries += 1
        wanted: dict[tuple[str, str], list[tuple[str, str]]] = {}  # (send, hash) -> keys
        for send_id, token in keys:
            for variant in token_variants(token):
                wanted.setdefault((send_id, hash_token(variant)), []).append((send_id, token))
        async with self._db.read() as conn:
            found = await store.targets(conn, sorted({s for s, _ in wanted}),
                                        sorted({h for _, h in wanted}))
        out: dict[tuple[str, str], Target] = {}
        for pair, target in found.items():
            for key in wanted.get(pair, ()):
                out.setdefault(key, target)
        return out

    async def close(self) -> None:
        self._flush()
        for task in list(self._flushes):
            await asyncio.gather(task, return_exceptions=True)
