"""Before a service starts: migrate, then make sure the database can be written, or stop with
one sentence an operator can act on (what is wrong, where, and how to fix it).

Without this a read-only or unwritable database let ``clarion serve`` start (a schema at head
needs no write) and fail every write later with a plain-text 500, and a database that could
not be opened or reached ended ``serve`` with a traceback.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from clarion.errors import DatabaseUnavailable
from clarion.store.availability import Unavailability, unavailability
from clarion.store.db import Database
from clarion.store.migrate import upgrade_async
from clarion.store.sqlite_files import sqlite_path


async def prepare_database(db: Database, *, migrate: bool, check_write: bool = True) -> None:
    """Apply migrations when ``migrate``, then (when ``check_write``) write something that
    changes nothing. Raises ``DatabaseUnavailable`` whose message is one sentence for an
    operator."""
    try:
        path = sqlite_path(db.url)
        if path is not None and (migrate or check_write):
            await asyncio.to_thread(_probe_sqlite, path, db.write_timeout, check_write)
        if migrate:
            await upgrade_async(db.url)
        if check_write:
            await db.check_write()
    except DatabaseUnavailable as exc:
        cause = exc.__cause__
        detail = str(cause).split("\n", 1)[0][:200] if cause is not None else exc.message
        raise operator_error(db, Unavailability(exc.reason, detail)) from exc
    except (DBAPIError, PoolTimeout, OSError, sqlite3.Error) as exc:  # not from db itself
        problem = unavailability(exc)
        if problem is None:
            raise
        raise operator_error(db, problem) from exc


def _probe_sqlite(path: Path, timeout: float, write: bool) -> None:
    """Open the file (and, when ``write``, write its header's user_version unchanged and roll
    back) with the standard library's driver. Done first and synchronously because aiosqlite,
    when it cannot open a file, leaves its worker thread to report to an event loop that a
    failing command closes at once (a stray traceback on standard error)."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        if write:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(f"PRAGMA user_version={int(version)}")
            finally:
                conn.execute("ROLLBACK")
    finally:
        conn.close()


def _read_only_file_system(folder: Path) -> bool:
    """Whether ``folder`` (or the nearest existing parent) is on a read-only mount."""
    for candidate in (folder, *folder.parents):
        try:
            return bool(os.statvfs(candidate).f_flag & os.ST_RDONLY)
        except FileNotFoundError:
            continue
        except OSError:
            return False
    return False


def _user() -> str:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "?"
    return f"user {name} (uid {os.getuid()})"


def operator_error(db: Database, problem: Unavailability) -> DatabaseUnavailable:
    """One sentence: what is wrong with which database, and what to do about it."""
    why, detail = problem.reason, problem.detail
    path = sqlite_path(db.url)
    if path is not None:
        where, folder = path.resolve(), path.resolve().parent
        if why in ("read_only", "cannot_open") and _read_only_file_system(folder):
            why = "read_only_fs"
        sentences = {
            "read_only_fs": f"the SQLite database {where} is on a read-only file system: "
                            f"remount {folder} read-write, or set CLARION_VAR_DIR to a "
                            "directory on a writable file system",
            "read_only": f"the SQLite database {where} is read-only for {_user()} (file or "
                         f"directory permissions): make it, its -wal and -shm "
                         f"files and the directory {folder} writable by that user, or set "
                         "CLARION_VAR_DIR to a writable directory",
            "cannot_open": f"the SQLite database {where} cannot be opened or created by "
                           f"{_user()} ({detail}): make sure {folder} exists and that user "
                           "may read and write in it (SQLite creates the -wal and -shm files "
                           "there), or set CLARION_VAR_DIR to a writable directory",
            "locked": f"the SQLite database {where} stayed locked by another process for "
                      f"{db.write_timeout:g} s: stop what holds it (another `clarion serve`, "
                      "a sqlite3 shell or a backup in an open transaction) or raise "
                      "CLARION_DB_WRITE_TIMEOUT_SECONDS",
            "disk_full": f"the disk holding the SQLite database {where} is full: free space "
                         "there",
            "io_error": f"reading or writing the SQLite database {where} failed ({detail}): "
                        "check the disk and its file system",
        }
    else:
        url = make_url(db.url)
        server = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"
        sentences = {
            "unreachable": f"cannot connect to PostgreSQL at {server} ({detail}): start the "
                           "server, or correct the host and port in CLARION_DATABASE_URL",
            "read_only": f"PostgreSQL at {server} accepts no writes (a standby, or "
                         "default_transaction_read_only is on): point CLARION_DATABASE_URL at "
                         "the primary",
            "locked": f"PostgreSQL at {server} kept a lock Clarion needs for more than "
                      f"{db.write_timeout:g} s: find the session holding it (pg_locks) or "
                      "raise CLARION_DB_WRITE_TIMEOUT_SECONDS",
            "disk_full": f"PostgreSQL at {server} is out of disk space: free space on its "
                         "server",
        }
    sentence = sentences.get(why, f"the database is unavailable ({why}: {detail}): fix it and "
                                  "start again; `clarion check-config` shows the settings")
    return DatabaseUnavailable(f"cannot start: {sentence}.", reason=problem.reason)
