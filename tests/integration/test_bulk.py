"""Driver-level executemany (``clarion.store.bulk``) writes what SQLAlchemy would write."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, insert, select, update

from clarion.store.bulk import DriverInsert, DriverMany
from clarion.store.db import Database
from clarion.store.tables import admin_tokens, orgs

pytestmark = pytest.mark.integration


async def test_rows_read_back_exactly_as_rows_written_through_sqlalchemy(db: Database) -> None:
    paris = timezone(timedelta(hours=1))
    shared = datetime(2026, 11, 28, 18, 30, 15, 123456, tzinfo=paris)  # stored as UTC
    ids = [str(uuid.uuid4()) for _ in range(4)]
    async with db.write() as conn:
        await conn.execute(insert(orgs), [{"id": ids[0], "name": "via SQLAlchemy",
                                           "created_at": shared}])
        await DriverInsert(orgs, ("name", "created_at", "id")).run(conn, [
            ("shared time", shared, ids[1]), ("another time", shared + timedelta(seconds=1),
                                              ids[2]),
            ("shared again", shared, ids[3])])  # the processor's memo must not mix them up
    async with db.read() as conn:
        got = {r.id: (r.name, r.created_at) for r in await conn.execute(select(orgs))}
        # Compared in the database too: the text SQLite stores must be the same format.
        same = (await conn.execute(select(orgs.c.id).where(orgs.c.created_at == shared)
                                   .order_by(orgs.c.id))).scalars().all()
    assert got[ids[0]] == ("via SQLAlchemy", shared)
    assert got[ids[1]] == ("shared time", shared)
    assert got[ids[2]] == ("another time", shared + timedelta(seconds=1))
    assert got[ids[3]] == ("shared again", shared)
    assert got[ids[1]][1].tzinfo is not None and got[ids[1]][1].utcoffset() == timedelta(0)
    assert same == sorted([ids[0], ids[1], ids[3]])


async def test_an_update_keeps_the_values_fixed_in_its_statement(db: Database) -> None:
    org_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    tokens = [(str(uuid.uuid4()), name) for name in ("keep", "rename", "other")]
    async with db.write() as conn:
        await conn.execute(insert(orgs), [{"id": org_id, "name": "Contoso", "created_at": now}])
        await conn.execute(insert(admin_tokens), [
            {"id": i, "org_id": org_id, "token_hash": uuid.uuid4().hex, "name": name,
             "created_at": now} for i, name in tokens])
    rename = DriverMany(
        lambda _d: update(admin_tokens)
        .where(admin_tokens.c.id == bindparam("b_id"), admin_tokens.c.name == "rename")
        .values(name=bindparam("b_name"), revoked_at=bindparam("b_at")),
        ("b_id", "b_name", "b_at"))
    later = now + timedelta(minutes=5)
    async with db.write() as conn:  # only the row named "rename" matches the fixed condition
        await rename.run(conn, [(i, f"{name} done", later) for i, name in tokens])
        await rename.run(conn, [])  # nothing to do is fine
    async with db.read() as conn:
        got = {r.id: (r.name, r.revoked_at) for r in await conn.execute(select(admin_tokens))}
    assert got == {tokens[0][0]: ("keep", None), tokens[1][0]: ("rename done", later),
                   tokens[2][0]: ("other", None)}


def test_unknown_columns_are_refused_when_built() -> None:
    with pytest.raises(ValueError, match="no column"):
        DriverInsert(orgs, ("id", "nmae"))
