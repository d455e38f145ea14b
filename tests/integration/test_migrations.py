"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command

from clarion.store.migrate import alembic_config, upgrade

pytestmark = pytest.mark.integration


async def test_migrations_match_the_tables_and_downgrade_cleanly(db_url: str) -> None:
    cfg = alembic_config(db_url)
    await asyncio.to_thread(upgrade, db_url)
    await asyncio.to_thread(command.check, cfg)  # raises if tables.py and migrations differ
    await asyncio.to_thread(command.downgrade, cfg, "base")
    await asyncio.to_thread(upgrade, db_url)
    await asyncio.to_thread(upgrade, db_url)  # idempotent: serve runs it at every start


def test_processes_starting_together_migrate_postgresql_one_after_the_other(pg_url: str) -> None:
    import subprocess
    import sys

    code = f"from clarion.store.migrate import upgrade; upgrade({pg_url!r})"
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
             for _ in range(4)]
    results = [(p.returncode, err.decode()) for p in procs
               for _, err in [p.communicate(timeout=120)]]
    assert [rc for rc, _ in results] == [0, 0, 0, 0], results
