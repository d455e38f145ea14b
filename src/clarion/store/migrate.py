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


def redacted(url: str) -> str:
    """The database URL without its password (for messages)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable>"


async def schema_revisions(url: str) -> tuple[str | None, str | None]:
    """(the database's schema revision, the revision this code expects); raises when the
    database cannot be reached."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            current = await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision())
    finally:
        await engine.dispose()
    return current, ScriptDirectory.from_config(alembic_config(url)).get_current_head()
