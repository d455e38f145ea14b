"""Queries of people: CRUD, lookups, keyset pages, existence checks and the CIJ OData
subset compiled to SQL. Every query filters on ``org_id``."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from clarion.domain import odata
from clarion.domain.people import PersonRead
from clarion.store import tables as t
from clarion.store.db import Conn, duplicates_raised

# Existence checks of a whole audience (a send to 100,000 people): fewer, larger statements,
# still far below both drivers' 32,766 bound parameters.
EXISTS_CHUNK = 5_000
_P = t.people.c


def _person(row: Mapping[Any, Any]) -> PersonRead:
    return PersonRead(
        id=row["id"], kind=row["kind"], email=row["email"], phone=row["phone"],
        first_name=row["first_name"], last_name=row["last_name"], time_zone=row["time_zone"],
        locale=row["locale"], attributes=dict(row["attributes"] or {}),
        created_at=row["created_at"], updated_at=row["updated_at"],
    )


async def insert_person(conn: Conn, row: Mapping[str, Any]) -> PersonRead:
    """Insert a person (``Duplicate`` if the id is taken in the org meanwhile)."""
    async with duplicates_raised():
        await conn.execute(insert(t.people).values(**row))
    return _person(row)


async def insert_many(conn: Conn, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert people in one statement (``Duplicate``, and nothing inserted, if an id is
    taken)."""
    async with duplicates_raised():
        await conn.execute(insert(t.people), list(rows))


async def insert_each(conn: Conn, rows: Sequence[Mapping[str, Any]]) -> list[bool]:
    """Insert people one by one, each in a savepoint: whether each went in (False: its id
    was taken)."""
    out = []
    for row in rows:
        try:
            async with conn.begin_nested():
                await conn.execute(insert(t.people).values(**row))
        except IntegrityError:
            out.append(False)
        else:
            out.append(True)
    return out


async def exists(conn: Conn, org_id: str, person_id: str) -> bool:
    return await conn.scalar(select(literal(1)).where(
        _P.org_id == org_id, _P.id == person_id)) is not None


async def get(conn: Conn, org_id: str, person_id: str) -> PersonRead | None:
    row = (await conn.execute(select(t.people).where(
        _P.org_id == org_id, _P.id == person_id))).mappings().first()
    return None if row is None else _person(row)


async def get_many(conn: Conn, org_id: str, person_ids: Sequence[str]
                   ) -> dict[str, PersonRead]:
    """The people of ``person_ids`` that exist (a page of a segment: up to a few thousand),
    by id, in statements of ``EXISTS_CHUNK`` ids."""
    out: dict[str, PersonRead] = {}
    for i in range(0, len(person_ids), EXISTS_CHUNK):
        chunk = list(person_ids[i:i + EXISTS_CHUNK])
        rows = (await conn.execute(select(t.people).where(
            _P.org_id == org_id, _P.id.in_(chunk)))).mappings().all()
        out.update((str(r["id"]), _person(r)) for r in rows)
    return out


async def update_person(conn: Conn, org_id: str, person_id: str,
                        changes: Mapping[str, Any]) -> None:
    await conn.execute(update(t.people).where(_P.org_id == org_id, _P.id == person_id)
                       .values(**changes))


async def delete_person(conn: Conn, org_id: str, person_id: str) -> bool:
    """Delete a person and every device registered to them; False if there was none."""
    result = await conn.execute(delete(t.people).where(
        _P.org_id == org_id, _P.id == person_id))
    if not result.rowcount:
        return False
    # A person's device tokens are personal data too: they go with the person.
    await conn.execute(delete(t.devices).where(
        t.devices.c.org_id == org_id, t.devices.c.person_id == person_id))
    return True


async def page(conn: Conn, org_id: str, *, kind: str | None, email: str | None,
               phone: str | None, after: str | None, limit: int) -> list[PersonRead]:
    """Up to ``limit`` people of the org in id order after ``after``, filtered."""
    query = select(t.people).where(_P.org_id == org_id)
    if kind is not None:
        query = query.where(_P.kind == kind)
    if email is not None:
        query = query.where(_P.email == email)
    if phone is not None:
        query = query.where(_P.phone == phone)
    if after is not None:
        query = query.where(_P.id > after)
    rows = (await conn.execute(query.order_by(_P.id).limit(limit))).mappings().all()
    return [_person(r) for r in rows]


async def kinds_of(conn: Conn, org_id: str, person_ids: Collection[str]) -> dict[str, str]:
    """``{id: kind}`` for those of ``person_ids`` (canonical GUIDs) that are people of the
    org: one query per ``EXISTS_CHUNK`` ids."""
    keys = list(person_ids)
    found: dict[str, str] = {}
    for start in range(0, len(keys), EXISTS_CHUNK):
        rows = await conn.execute(select(_P.id, _P.kind).where(
            _P.org_id == org_id, _P.id.in_(keys[start:start + EXISTS_CHUNK])))
        found.update((row.id, row.kind) for row in rows)
    return found


# --- CIJ OData -------------------------------------------------------------------------------

_ODATA_COLUMNS = {"emailaddress1": _P.email, "mobilephone": _P.phone,
                  "firstname": _P.first_name, "lastname": _P.last_name}


def _condition(node: odata.Node) -> ColumnElement[bool]:
    """The SQL of a parsed filter whose values the service already normalised (emails
    lower-cased, phones in E.164)."""
    if isinstance(node, odata.And):
        return and_(*(_condition(item) for item in node.items))
    if isinstance(node, odata.Or):
        return or_(*(_condition(item) for item in node.items))
    if node.field not in _ODATA_COLUMNS:  # contactid / leadid: the parser checked the GUID
        return false() if node.value is None else _P.id == node.value
    column = _ODATA_COLUMNS[node.field]
    if node.value is None:
        return column.is_(None)
    if node.field in ("emailaddress1", "mobilephone"):
        return column == node.value
    # Dataverse compares text case-insensitively (its collation); lower() both sides in SQL so
    # each database folds both sides the same way.
    return func.lower(column) == func.lower(literal(node.value))


async def odata_rows(conn: Conn, org_id: str, kind: str, condition: odata.Node | None,
                     limit: int) -> list[PersonRead]:
    """People of one kind matching a parsed OData filter, in id order."""
    query = t.people.select().where(_P.org_id == org_id, _P.kind == kind)
    if condition is not None:
        query = query.where(_condition(condition))
    rows = (await conn.execute(query.order_by(_P.id).limit(limit))).mappings().all()
    return [_person(r) for r in rows]
