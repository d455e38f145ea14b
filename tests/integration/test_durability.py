"""What a 202 promises on SQLite (issue 10, item 8): by default every commit is synced to disk
(``synchronous=FULL``), so an accepted request survives a power loss, not only a crash of the
process; ``CLARION_SQLITE_SYNCHRONOUS=normal`` trades that for speed, as documented."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from clarion.bootstrap import build
from clarion.store.migrate import upgrade
from tests.conftest import make_settings

pytestmark = pytest.mark.integration

FULL, NORMAL = 2, 1  # PRAGMA synchronous values (sqlite.org/pragma.html#pragma_synchronous)


async def _synchronous(tmp_path: Path, **overrides: object) -> tuple[int, int]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'clarion.db'}"
    await asyncio.to_thread(upgrade, url)
    container = build(make_settings(url, tmp_path, **overrides))
    try:
        async with container.db.write() as conn:
            written = (await conn.execute(text("PRAGMA synchronous"))).scalar_one()
        async with container.db.read() as conn:
            read = (await conn.execute(text("PRAGMA synchronous"))).scalar_one()
        return int(written), int(read)
    finally:
        await container.close()


async def test_commits_are_synced_to_disk_by_default(tmp_path: Path) -> None:
    assert await _synchronous(tmp_path) == (FULL, FULL)


async def test_normal_is_a_setting(tmp_path: Path) -> None:
    assert await _synchronous(tmp_path, sqlite_synchronous="normal") == (NORMAL, NORMAL)


def test_other_values_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="sqlite_synchronous"):
        make_settings("sqlite+aiosqlite:///x.db", tmp_path, sqlite_synchronous="off")
