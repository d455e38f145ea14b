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
