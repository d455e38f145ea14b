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
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import orjson
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from clarion.errors import DatabaseUnavailable
from clarion.store.availability import Unavailability, unavailability, unavailable_error
from clarion.store.sqlite_files import secure_sqlite_files

log = logging.getLogger(__name__)

_AFTER_COMMIT = "clarion_after_commit"
_BUSY_SET = "clarion_busy_ms"  # the connection's busy_timeout now
_BUSY_WANT = "clarion_busy_want_ms"  # what the next write transaction may wait
# A write that touches no row: jobs has no row with a negative id.
_PROBE = text("DELETE FROM jobs WHERE id < 0")

# What services hold while a transaction is open and hand to the store's query functions;
# they never use it themselves (services import no SQLAlchemy).
Conn = AsyncConnection


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# JSON columns (job payloads, above all: every claim decodes them) through orjson, several
# times faster than the standard library's json.
_JSON: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
# Statement logging (echo, or an operator raising the "sqlalchemy.engine" logger) shows the SQL
# only: parameters are tokens, emails and callback headers, and logs are read by more people
# than the database is.
_ENGINE: dict[str, Any] = {**_JSON, "hide_parameters": True}


class Duplicate(Exception):
    """A row with the same unique key exists (another request won a race): the store's word
    for a unique-constraint violation, so that services need not know SQLAlchemy's."""


@asynccontextmanager
async def duplicates_raised() -> AsyncIterator[None]:
    """Turn a unique-constraint violation inside the block into ``Duplicate``."""
    try:
        yield
    except IntegrityError as exc:
        raise Duplicate(str(exc.orig)) from exc


def is_connection_lost(exc: BaseException) -> bool:
    """A passing infrastructure failure (the database went away, is locked or read-only: worth
    a retry), not a fault of the statement or its data."""
    if isinstance(exc, DatabaseUnavailable | OperationalError | InterfaceError | OSError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def after_commit(conn: AsyncConnection, fn: Callable[[], None]) -> None:
    """Run ``fn`` after the transaction of ``conn`` commits (never if it rolls back)."""
    conn.info.setdefault(_AFTER_COMMIT, []).append(fn)


Synchronous = Literal["normal", "full"]


def _sqlite_pragmas(engine: Engine, *, writer: bool, synchronous: Synchronous,
                    busy_ms: int) -> None:
    # synchronous (sqlite.org/pragma.html#pragma_synchronous, and "WAL mode" in
    # sqlite.org/wal.html): FULL syncs the WAL at every commit, so a committed transaction
    # survives a power loss or an OS crash; NORMAL syncs only at checkpoints, so those may
    # roll back the last commits (never corrupting the database), while a crash of the
    # process alone loses nothing. A 202 is answered after the commit, so this is what a 202
    # promises: docs/deployment.md, "Durability".
    sync_pragma = f"PRAGMA synchronous={synchronous.upper()}"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        # Take transaction control away from the driver so BEGIN IMMEDIATE is ours to emit.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(sync_pragma)
        # How long SQLite waits for a lock another process holds (sqlite.org/c3ref/
        # busy_timeout.html); then it answers SQLITE_BUSY, which becomes a 503.
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()
        record.info[_BUSY_SET] = busy_ms

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A write that already waited for the in-process lock has less of its time left for
        # the file lock (set only then: an uncontended commit pays no extra statement).
        want = conn.info.get(_BUSY_WANT)
        if want is not None and want != conn.info.get(_BUSY_SET):
            conn.exec_driver_sql(f"PRAGMA busy_timeout={want}")
            conn.info[_BUSY_SET] = want
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def _unavailable(exc: DBAPIError | PoolTimeout | OSError, *, opened: bool,
                 waited: float) -> DatabaseUnavailable | None:
    """``DatabaseUnavailable`` for a driver's availability error (logged here with the
    driver's words, which the client does not get); None for any other error, which stays
    as it is. A plain ``OSError`` counts only while connecting (asyncpg's refused or
    timed-out connect): once the connection is open, one from the caller's code is the
    caller's."""
    if isinstance(exc, OSError) and opened:
        return None
    problem = unavailability(exc)
    if problem is None:
        return None
    log.warning("database unavailable (%s): %s", problem.reason, problem.detail)
    return unavailable_error(problem, write_timeout=waited)


class Database:
    """Both engines, the write transaction and the availability rules.

    Every wait for the database is bounded by ``write_timeout`` seconds
    (``CLARION_DB_WRITE_TIMEOUT_SECONDS``): on SQLite the in-process writer lock and the file
    lock together (``busy_timeout``); on PostgreSQL a pool checkout, a connect and each lock
    wait (``lock_timeout``). Past it, or when the database is read-only or unreachable,
    ``write()`` and ``read()`` raise ``DatabaseUnavailable`` (503 + Retry-After at the API;
    a retry for the worker) instead of the driver's error."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False,
                 sqlite_synchronous: Synchronous = "full", write_timeout: float = 5.0) -> None:
        if sqlite_synchronous not in ("normal", "full"):
            raise ValueError(f"sqlite_synchronous must be normal or full, not "
                             f"{sqlite_synchronous!r}")
        if write_timeout <= 0:
            raise ValueError(f"write_timeout must be > 0, not {write_timeout!r}")
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.write_timeout = write_timeout
        self._busy_ms = max(1, int(write_timeout * 1000))
        if self.is_sqlite:
            secure_sqlite_files(url)
            self.write_engine: AsyncEngine = create_async_engine(
                url, pool_size=1, max_overflow=0, echo=echo, **_ENGINE
            )
            self.read_engine: AsyncEngine = create_async_engine(
                url, pool_size=4, max_overflow=4, echo=echo, **_ENGINE
            )
            _sqlite_pragmas(self.write_engine.sync_engine, writer=True,
                            synchronous=sqlite_synchronous, busy_ms=self._busy_ms)
            _sqlite_pragmas(self.read_engine.sync_engine, writer=False,
                            synchronous=sqlite_synchronous, busy_ms=self._busy_ms)
            self._write_lock: asyncio.Lock | None = asyncio.Lock()
        else:
            self.write_engine = create_async_engine(
                url, pool_size=pool_size, max_overflow=pool_size, echo=echo, pool_pre_ping=True,
                pool_timeout=write_timeout,
                connect_args={"timeout": write_timeout,
                              "server_settings": {"lock_timeout": str(self._busy_ms)}},
                **_ENGINE,
            )
            self.read_engine = self.write_engine
            self._write_lock = None

    @property
    def dialect(self) -> str:
        return self.write_engine.dialect.name

    @asynccontextmanager
    async def write(self, *, max_wait: float | None = None) -> AsyncIterator[AsyncConnection]:
        """A connection in a write transaction; commits on success, rolls back on error.

        Raises ``DatabaseUnavailable`` when the database cannot be written within ``max_wait``
        seconds (default ``write_timeout``), is read-only or cannot be reached.

        One generator, no nested context managers: every group commit of the accept paths
        runs through here, so its fixed cost is paid once per commit by every request."""
        limit = self.write_timeout if max_wait is None else max_wait
        deadline = time.monotonic() + limit
        lock = self._write_lock
        if lock is not None:
            if lock.locked():  # another write of this process runs: wait for it, boundedly
                try:
                    await asyncio.wait_for(lock.acquire(), limit)
                except TimeoutError:
                    problem = Unavailability("locked",
                                             f"the writer lock stayed taken {limit:g} s")
                    raise unavailable_error(problem, write_timeout=limit) from None
            else:
                await lock.acquire()
        try:
            opened = False
            try:
                async with self.write_engine.connect() as conn:
                    opened = True
                    info = conn.info
                    info.pop(_AFTER_COMMIT, None)
                    if self.is_sqlite:
                        left = int((deadline - time.monotonic()) * 1000)
                        # 100 ms steps, so that a connection's setting rarely changes
                        info[_BUSY_WANT] = (self._busy_ms if left >= self._busy_ms - 100
                                            else max(50, left // 100 * 100))
                    async with conn.begin():
                        yield conn
                    callbacks = info.pop(_AFTER_COMMIT, None)
            except (DBAPIError, PoolTimeout, OSError) as exc:
                unavailable = _unavailable(exc, opened=opened, waited=limit)
                if unavailable is None:
                    raise
                raise unavailable from exc
            if callbacks:
                for fn in callbacks:
                    fn()
        finally:
            if lock is not None:
                lock.release()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reading; ``DatabaseUnavailable`` when the database cannot be
        reached or opened."""
        opened = False
        try:
            async with self.read_engine.connect() as conn:
                opened = True
                yield conn
        except (DBAPIError, PoolTimeout, OSError) as exc:
            unavailable = _unavailable(exc, opened=opened, waited=self.write_timeout)
            if unavailable is None:
                raise
            raise unavailable from exc

    async def check_read(self) -> None:
        """Read something, to learn whether reading works now; raises ``DatabaseUnavailable``."""
        async with self.read() as conn:
            await conn.execute(text("SELECT 1"))

    async def check_write(self, *, max_wait: float | None = None) -> None:
        """Write something that changes nothing, to learn whether writing works now (a
        read-only database passes ``BEGIN IMMEDIATE`` and fails only at the first write).
        Raises ``DatabaseUnavailable``."""
        async with self.write(max_wait=max_wait) as conn:
            await conn.execute(_PROBE)

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
