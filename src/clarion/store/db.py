"""Engines and transactions for both modes, with one API.

SQLite (embedded default) allows one writer at a time. Every write goes through one connection
guarded by an ``asyncio.Lock`` and starts with ``BEGIN IMMEDIATE`` so a write never upgrades a
read lock half-way (the classic "database is locked"). Reads use a small pool of their own
(WAL lets them run beside the writer). PostgreSQL uses one pooled engine for both.

``Database.write()`` yields a connection inside a transaction; callbacks registered with
``after_commit(conn, fn)`` run once the transaction has committed (the job queue uses this to
wake local workers only when the jobs are visible).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from clarion.store.sqlite_files import secure_sqlite_files

_AFTER_COMMIT = "clarion_after_commit"


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# JSON columns (job payloads, above all: every claim decodes them) through orjson, several
# times faster than the standard library's json.
_JSON: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
# Statement logging (echo, or an operator raising the "sqlalchemy.engine" logger) shows the SQL
# only: parameters are tokens, emails and callback headers, and logs are read by more people
# than the database is.
_ENGINE: dict[str, Any] = {**_JSON, "hide_parameters": True}


def after_commit(conn: AsyncConnection, fn: Callable[[], None]) -> None:
    """Run ``fn`` after the transaction of ``conn`` commits (never if it rolls back)."""
    conn.info.setdefault(_AFTER_COMMIT, []).append(fn)


Synchronous = Literal["normal", "full"]


def _sqlite_pragmas(engine: Engine, *, writer: bool, synchronous: Synchronous) -> None:
    # synchronous (sqlite.org/pragma.html#pragma_synchronous, and "WAL mode" in
    # sqlite.org/wal.html): FULL syncs the WAL at every commit, so a committed transaction
    # survives a power loss or an OS crash; NORMAL syncs only at checkpoints, so those may
    # roll back the last commits (never corrupting the database), while a crash of the
    # process alone loses nothing. A 202 is answered after the commit, so this is what a 202
    # promises: docs/deployment.md, "Durability".
    sync_pragma = f"PRAGMA synchronous={synchronous.upper()}"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the driver so BEGIN IMMEDIATE is ours to emit.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(sync_pragma)
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False,
                 sqlite_synchronous: Synchronous = "full") -> None:
        if sqlite_synchronous not in ("normal", "full"):
            raise ValueError(f"sqlite_synchronous must be normal or full, not "
                             f"{sqlite_synchronous!r}")
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            secure_sqlite_files(url)
            self.write_engine: AsyncEngine = create_async_engine(
                url, pool_size=1, max_overflow=0, echo=echo, **_ENGINE
            )
            self.read_engine: AsyncEngine = create_async_engine(
                url, pool_size=4, max_overflow=4, echo=echo, **_ENGINE
            )
            _sqlite_pragmas(self.write_engine.sync_engine, writer=True,
                            synchronous=sqlite_synchronous)
            _sqlite_pragmas(self.read_engine.sync_engine, writer=False,
                            synchronous=sqlite_synchronous)
            self._write_lock: asyncio.Lock | None = asyncio.Lock()
        else:
            self.write_engine = create_async_engine(
                url, pool_size=pool_size, max_overflow=pool_size, echo=echo, pool_pre_ping=True,
                **_ENGINE,
            )
            self.read_engine = self.write_engine
            self._write_lock = None

    @property
    def dialect(self) -> str:
        return self.write_engine.dialect.name

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a write transaction; commits on success, rolls back on error."""
        if self._write_lock is not None:
            async with self._write_lock, self._write_tx() as conn:
                yield conn
        else:
            async with self._write_tx() as conn:
                yield conn

    @asynccontextmanager
    async def _write_tx(self) -> AsyncIterator[AsyncConnection]:
        async with self.write_engine.connect() as conn:
            conn.info.pop(_AFTER_COMMIT, None)
            async with conn.begin():
                yield conn
            callbacks = conn.info.pop(_AFTER_COMMIT, [])
        for fn in callbacks:
            fn()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.read_engine.connect() as conn:
            yield conn

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
