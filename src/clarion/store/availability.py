"""Which database failures mean "the database is unavailable", in Clarion's words.

The drivers say the same few things in many ways: SQLite through its result codes
(``sqlite3.Error.sqlite_errorname``, sqlite.org/rescode.html), PostgreSQL through SQLSTATE
codes (postgresql.org/docs/current/errcodes-appendix.html) wrapped by SQLAlchemy, asyncpg
through plain ``OSError`` when it cannot connect, SQLAlchemy's pool through its own
``TimeoutError``. ``unavailability(exc)`` folds them into a few reasons; anything else (a
constraint, a bug) is not an availability problem and stays what it is.

Reasons: ``locked`` (another writer held the database past the write timeout), ``read_only``,
``cannot_open`` (SQLite: the file or its directory), ``unreachable`` (no connection to the
server), ``lost`` (a connection broke), ``pool_timeout`` (every pooled connection busy),
``disk_full``, ``io_error``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from clarion.errors import DatabaseUnavailable


@dataclass(frozen=True, slots=True)
class Unavailability:
    reason: str
    detail: str  # the driver's own words: for logs and operators, never for HTTP clients


# What a client is told (no path, no host name, nothing about the installation).
PHRASES = {
    "locked": "the database is locked by another writer",
    "read_only": "the database is read-only",
    "cannot_open": "the database cannot be opened",
    "unreachable": "the database server cannot be reached",
    "lost": "the connection to the database was lost",
    "pool_timeout": "no database connection became free in time",
    "disk_full": "the database's disk is full",
    "io_error": "the database had an I/O error",
}

_SQLITE = (  # result-code name prefix -> reason (extended codes share the primary's prefix)
    ("SQLITE_BUSY", "locked"), ("SQLITE_LOCKED", "locked"), ("SQLITE_READONLY", "read_only"),
    ("SQLITE_CANTOPEN", "cannot_open"), ("SQLITE_PERM", "cannot_open"),
    ("SQLITE_FULL", "disk_full"), ("SQLITE_IOERR", "io_error"),
)
_SQLSTATE = {  # PostgreSQL SQLSTATE -> reason
    "25006": "read_only",  # read_only_sql_transaction: a standby, default_transaction_read_only
    "55P03": "locked",  # lock_not_available: lock_timeout expired
    "57P01": "unreachable", "57P02": "unreachable", "57P03": "unreachable",  # shutting down
    "53300": "unreachable",  # too_many_connections
    "53100": "disk_full",
    "58030": "io_error",
}


def unavailability(exc: BaseException) -> Unavailability | None:
    """The availability problem ``exc`` reports, or None when it is another kind of error."""
    detail = str(exc).split("\n", 1)[0][:300]
    if isinstance(exc, PoolTimeout):
        return Unavailability("pool_timeout", detail)
    if isinstance(exc, sqlite3.Error):  # the standard library's driver, used at start
        reason = _sqlite_reason(exc)
        return None if reason is None else Unavailability(reason, detail)
    if isinstance(exc, DBAPIError):
        orig = exc.orig
        reason = _sqlite_reason(orig)
        if reason is not None:
            return Unavailability(reason, detail)
        state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if isinstance(state, str):
            if state in _SQLSTATE:
                return Unavailability(_SQLSTATE[state], detail)
            if state.startswith("08"):  # connection exception class
                return Unavailability("lost", detail)
        if exc.connection_invalidated or isinstance(exc, InterfaceError):
            return Unavailability("lost", detail)
        return None
    if isinstance(exc, OSError):  # asyncpg cannot connect: refused, timed out, no such host
        return Unavailability("unreachable", f"{type(exc).__name__}: {exc}"[:300])
    return None


def _sqlite_reason(exc: BaseException | None) -> str | None:
    name = getattr(exc, "sqlite_errorname", None)
    if isinstance(name, str):
        for prefix, reason in _SQLITE:
            if name.startswith(prefix):
                return reason
    return None


def unavailable_error(problem: Unavailability, *,
                      write_timeout: float | None = None) -> DatabaseUnavailable:
    """The error a request gets for ``problem``: 503 with Retry-After, in safe words.
    ``write_timeout``: how long it waited, when known."""
    phrase = PHRASES.get(problem.reason, "the database is unavailable")
    retry = 5
    if problem.reason == "locked" and write_timeout is not None:
        phrase += f" (waited {write_timeout:g} s)"
        retry = max(1, round(write_timeout))
    return DatabaseUnavailable(
        f"{phrase}; nothing was stored", reason=problem.reason,
        fix="Retry after the number of seconds in Retry-After. Operators: GET /readyz and the "
            "server log say what is wrong.",
        retry_after_seconds=retry)
