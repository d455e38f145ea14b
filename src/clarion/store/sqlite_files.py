"""The SQLite database file and its ``-wal``/``-shm`` companions: owner-only, like
``var/secret.key``.

They hold what an attacker with a shell on the host wants: API token hashes, device tokens,
emails and phone numbers, callback ``Authorization`` headers, the encrypted provider
credentials. SQLite creates a database file with mode 0644 (less the umask) and gives the
``-wal``, ``-shm`` and ``-journal`` files the permissions of the database file itself
(``os_unix.c``, ``findCreateFileMode``). So Clarion creates the file 0600 before SQLite first
opens it, and all of them are owner-only. Files found looser at start (an older Clarion, a
copy, a restore) lose the group's and others' permissions (0644 becomes 0600), with a warning.
A directory Clarion creates for them is 0700.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

_COMPANIONS = ("", "-wal", "-shm", "-journal")


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases and in-memory ones."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    database = parsed.database or ""
    if database.startswith("file:"):  # a URI filename (?uri=true): file:/path?mode=ro
        database = database[len("file:"):].split("?", 1)[0]
    if not database or database == ":memory:":
        return None
    return Path(database)


def secure_sqlite_files(url: str) -> None:
    """Create the database file (and its directory) owner-only if missing, and tighten the
    existing database files that others may read, with a warning. No-op for PostgreSQL."""
    path = sqlite_path(url)
    if path is None:
        return
    try:
        if not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        pass
    except OSError:
        return  # not writable here: opening it reports the problem in Clarion's words
    else:
        os.close(fd)  # an empty file is an empty SQLite database
    for suffix in _COMPANIONS:
        _tighten(Path(f"{path}{suffix}"))


def _tighten(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if not mode & 0o077:
        return
    tight = mode & 0o700  # only take from group and others: the owner keeps what it had
    try:
        path.chmod(tight)
    except OSError as exc:
        log.warning("%s can be read by other users (mode %04o) and could not be restricted "
                    "(%s): run `chmod 600 %s` as its owner", path, mode, exc, path)
        return
    log.warning("%s could be read by other users (mode %04o); it holds tokens and personal "
                "data, so Clarion set it to %04o (owner only). Give backup tools access "
                "through the owner account, not through the file's mode.", path, mode, tight)
