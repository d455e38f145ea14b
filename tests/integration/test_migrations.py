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
    await asyncio.to_thread(command.check, cfg)  # raises if store.tables and migrations differ
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


async def test_the_audience_moves_to_rows_and_back_with_its_order(db_url: str) -> None:
    """0004 copies each send's ``user_ids`` array into ``send_audience`` (in order, in chunks)
    and counts it; its downgrade rebuilds the arrays."""
    from datetime import UTC, datetime

    from sqlalchemy import JSON, column, select, table, text
    from sqlalchemy.ext.asyncio import create_async_engine

    cfg = alembic_config(db_url)
    await asyncio.to_thread(upgrade, db_url, "0003")
    now = datetime.now(UTC)
    org, app = "0" * 8 + "-0000-4000-8000-" + "0" * 12, "1" * 8 + "-1111-4111-8111-" + "1" * 12
    people = [f"{i:08d}-2222-4222-8222-222222222222" for i in range(1203)]
    sends = table("sends", *(column(c) for c in (
        "id", "org_id", "app_id", "state", "fanned_out_people", "device_count",
        "created_at", "expires_at")), column("message", JSON), column("user_ids", JSON))
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO orgs (id, name, created_at) "
                                    "VALUES (:id, 'o', :now)"), {"id": org, "now": now})
            await conn.execute(text(
                "INSERT INTO apps (id, org_id, name, settings, credential_status, created_at,"
                " updated_at) VALUES (:id, :org, 'a', '{}', '{}', :now, :now)"),
                {"id": app, "org": org, "now": now})
            for send_id, audience in (("3" * 8 + "-3333-4333-8333-" + "3" * 12, people),
                                      ("4" * 8 + "-4444-4444-8444-" + "4" * 12, [])):
                await conn.execute(sends.insert().values(
                    id=send_id, org_id=org, app_id=app, message={"title": "t"},
                    state="queued", fanned_out_people=0, device_count=0, created_at=now,
                    expires_at=now, user_ids=audience))
        await asyncio.to_thread(upgrade, db_url, "0004")
        from clarion.store import sends as send_store

        async with engine.connect() as conn:
            stored = [await send_store.audience(conn, s) for s in (
                "3" * 8 + "-3333-4333-8333-" + "3" * 12, "4" * 8 + "-4444-4444-8444-" + "4" * 12)]
            counts = dict((await conn.execute(text("SELECT id, people_count FROM sends"))).all())
        assert stored == [people, []]
        assert sorted(counts.values()) == [0, 1203]
        await asyncio.to_thread(command.downgrade, cfg, "0003")
        async with engine.connect() as conn:
            back = (await conn.execute(select(sends.c.user_ids).order_by(sends.c.id))).all()
        assert [r[0] for r in back] == [people, []]
    finally:
        await engine.dispose()
