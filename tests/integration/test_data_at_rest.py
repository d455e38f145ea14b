"""Data at rest and in logs (issue 10, item 9): the SQLite database and its -wal/-shm files
are readable by their owner only, like var/secret.key; looser files are tightened at start
with a warning; SQL parameters never reach a log, even when an operator turns SQLAlchemy's
statement logging on."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from clarion.store.db import Database
from clarion.store.migrate import upgrade
from tests.conftest import make_settings

pytestmark = pytest.mark.integration


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The umask of a typical shell (022): files 0644 and directories 0755 unless asked."""
    old = os.umask(0o022)
    yield
    os.umask(old)


async def test_a_new_database_and_its_wal_are_owner_only(tmp_path: Path,
                                                         permissive_umask: None) -> None:
    var = tmp_path / "var"
    url = f"sqlite+aiosqlite:///{var / 'clarion.db'}"
    await asyncio.to_thread(upgrade, url)  # `clarion serve` migrates first: it creates the file
    db = Database(url)
    try:
        async with db.write() as conn:
            await conn.execute(text("CREATE TABLE scratch (x)"))
        files = {p.name: mode(p) for p in var.iterdir()}
    finally:
        await db.dispose()
    assert files == {"clarion.db": 0o600, "clarion.db-wal": 0o600, "clarion.db-shm": 0o600}
    assert mode(var) == 0o700  # Clarion created the directory


def test_the_var_dir_clarion_creates_for_its_key_is_owner_only(tmp_path: Path,
                                                               permissive_umask: None) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'v' / 'clarion.db'}", tmp_path,
                             secret_key=None, var_dir=tmp_path / "v")
    with pytest.warns(UserWarning, match="generated one"):
        settings.secret_keys()
    assert mode(tmp_path / "v") == 0o700
    assert mode(tmp_path / "v" / "secret.key") == 0o600


async def test_looser_database_files_are_tightened_with_a_warning(
        tmp_path: Path, permissive_umask: None, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "clarion.db"
    conn = sqlite3.connect(path)  # as an older Clarion (or a copy) left it: 0644
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    keep_open = sqlite3.connect(path)  # keeps -wal and -shm on disk
    keep_open.execute("SELECT * FROM t").fetchall()
    conn.close()
    try:
        assert mode(path) == 0o644
        assert mode(Path(f"{path}-wal")) == 0o644
        caplog.set_level(logging.WARNING, logger="clarion")
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.dispose()
        assert (mode(path), mode(Path(f"{path}-wal")), mode(Path(f"{path}-shm"))) == (
            0o600, 0o600, 0o600)
        warned = {r.getMessage().split(" ")[0]: r.levelno for r in caplog.records
                  if "(mode 0644)" in r.getMessage()}
        assert warned == {f"{path}{suffix}": logging.WARNING for suffix in ("", "-wal", "-shm")}
    finally:
        keep_open.close()


async def test_sql_parameters_never_reach_the_log(
        db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An operator who switches SQLAlchemy's statement logging on (INFO, what ``echo=True``
    gives) sees statements, never their values."""
    await asyncio.to_thread(upgrade, db_url)
    db = Database(db_url)
    secret = "ada.private@contoso.com"
    try:
        caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
        async with db.write() as conn:
            await conn.execute(text("INSERT INTO orgs (id, name, created_at) "
                                    "VALUES (:id, :name, :at)"),
                               {"id": str(uuid.uuid4()), "name": secret,
                                "at": datetime(2026, 1, 1, tzinfo=UTC)})
        async with db.read() as conn:
            assert (await conn.execute(text("SELECT name FROM orgs"))).scalar() == secret
    finally:
        await db.dispose()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "INSERT INTO orgs" in logged  # the statement logging was on
    assert secret not in logged
