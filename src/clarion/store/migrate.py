"""Apply Alembic migrations programmatically (``clarion migrate``, and ``serve`` at start)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from clarion.store.sqlite_files import secure_sqlite_files

_HERE = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision``. Safe to call at every start."""
    secure_sqlite_files(url)  # before SQLite creates the file 0644 (and its WAL with it)
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    # env.py runs its own event loop, so run it in a thread when called from async code.
    await asyncio.to_thread(upgrade, url, revision)
