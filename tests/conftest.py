"""Shared fixtures.

``db_url`` is parametrised over the embedded SQLite file and a fresh PostgreSQL database (created
with a unique name on the local server and dropped afterwards). Tests that take ``container``
get a started ``Container`` on that database with migrations applied, a frozen-free system clock
and the fake sender for every platform.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import httpx
import pytest

from clarion.config import Settings
from clarion.domain.outcomes import Platform
from clarion.providers.fake import FakeSender
from clarion.store.db import Database
from clarion.store.migrate import upgrade

if TYPE_CHECKING:
    from clarion.bootstrap import Container

PG_DSN = os.environ.get("CLARION_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_SECRET = "test-secret-key-not-for-production"


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database on the local server, dropped on exit (also
    used by module-scoped fixtures, which cannot take the function-scoped ``pg_url``)."""
    name = f"clarion_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database; dropped after the test."""
    with pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'clarion.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """A migrated, empty database: SQLite, then PostgreSQL (through ``db_url``)."""
    await asyncio.to_thread(upgrade, db_url)
    database = Database(db_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app of ``container`` in-process."""
    from clarion.api.app import create_app

    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'clarion.db'}"


def make_settings(url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": url,
        "var_dir": tmp_path / "var",
        "secret_key": TEST_SECRET,
        "webhook_allow_private": True,
        "webpush_allow_private": True,  # the Web Push emulator listens on 127.0.0.1
        # The origin of the test service accounts' token_uri (tests/factories.py, closed):
        # only Google's or CLARION_FCM_URL's token endpoint is accepted.
        "fcm_url": "http://127.0.0.1:9",
        "job_poll_seconds": 0.2,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def fake_sender() -> FakeSender:
    return FakeSender()


@pytest.fixture
async def container(
    db_url: str, tmp_path: Path, fake_sender: FakeSender
) -> AsyncIterator[Container]:
    from clarion.bootstrap import build  # imported late: helpers' modules may be in flux

    await asyncio.to_thread(upgrade, db_url)
    c = build(make_settings(db_url, tmp_path), senders=dict.fromkeys(Platform, fake_sender))
    await c.start()
    try:
        yield c
    finally:
        await c.close()
