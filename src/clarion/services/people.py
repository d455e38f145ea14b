"""People use cases: create, read, update, delete, look up (by email or phone), the CIJ OData
lookup, and the batch existence check device registration relies on.

Every query filters on ``org_id``; an id of another org answers exactly as an unknown id.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, insert, literal, or_, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from clarion.clock import Clock
from clarion.config import Settings
from clarion.domain import odata
from clarion.domain.people import (
    PersonPage,
    PersonRead,
    canonical_guid,
    new_person_values,
    normalize_email,
    normalize_fields,
    normalize_phone,
    person_kind,
)
from clarion.errors import Conflict, InvalidInput, NotFound
from clarion.store import tables as t
from clarion.store.db import Database

MAX_PAGE = 1000
IN_CHUNK = 500  # bound on IN (...) lists: keeps statements well under every driver's limits

_P = t.people.c


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes for DateTime(timezone=True); every stored time is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def person_from_row(row: Mapping[Any, Any]) -> PersonRead:
    return PersonRead(
        id=row["id"], kind=row["kind"], email=row["email"], phone=row["phone"],
        first_name=row["first_name"], last_name=row["last_name"], time_zone=row["time_zone"],
        locale=row["locale"], attributes=dict(row["attributes"] or {}),
        created_at=_aware(row["created_at"]), updated_at=_aware(row["updated_at"]),
    )


def _not_found(person_id: object) -> NotFound:
    return NotFound(f"person {person_id} does not exist in this organization",
                    fix="Check the id, or look the person up by email or phone.")


def _taken(person_id: str) -> Conflict:
    return Conflict(f"a person with id {person_id} already exists in this organization",
                    field="id", fix="Update that person instead (PATCH), or leave id out to get "
                    "a new one.")


async def ensure_org(conn: AsyncConnection, org_id: str) -> None:
    found = await conn.scalar(select(literal(1)).where(t.orgs.c.id == org_id))
    if found is None:
        raise NotFound(f"organization {org_id} does not exist",
                       fix="List organizations with `clarion orgs list`.")


async def create_person(*, db: Database, clock: Clock, settings: Settings, org_id: str,
                        data: Mapping[str, Any]) -> PersonRead:
    values = new_person_values(data, default_region=settings.default_phone_region)
    now = clock.now()
    row = {**values, "org_id": org_id, "created_at": now, "updated_at": now}
    try:
        async with db.write() as conn:
            await ensure_org(conn, org_id)
            taken = await conn.scalar(select(literal(1)).where(
                _P.org_id == org_id, _P.id == values["id"]))
            if taken is not None:
                raise _taken(values["id"])
            await conn.execute(insert(t.people).values(**row))
    except IntegrityError as exc:  # a concurrent create of the same id
        raise _taken(values["id"]) from exc
    return person_from_row(row)


async def get_person(*, db: Database, org_id: str, person_id: str) -> PersonRead:
    guid = canonical_guid(person_id)
    if guid is None:
        raise _not_found(person_id)
    async with db.read() as conn:
        row = (await conn.execute(select(t.people).where(
            _P.org_id == org_id, _P.id == guid))).mappings().first()
    if row is None:
        raise _not_found(person_id)
    return person_from_row(row)


async def update_person(*, db: Database, clock: Clock, settings: Settings, org_id: str,
                        person_id: str, data: Mapping[str, Any]) -> PersonRead:
    """Change the fields present in ``data``; ``attributes``, when given, replaces them all."""
    guid = canonical_guid(person_id)
    if guid is None:
        raise _not_found(person_id)
    changes = normalize_fields(data, default_region=settings.default_phone_region)
    if changes.pop("id", None) not in (None, guid):
        raise InvalidInput("a person's id cannot change", field="id",
                           fix="Leave id out of the update, or create a new person.")
    async with db.write() as conn:
        where = and_(_P.org_id == org_id, _P.id == guid)
        row = (await conn.execute(select(t.people).where(where))).mappings().first()
        if row is None:
            raise _not_found(person_id)
        if not changes:
            return person_from_row(row)
        changes["updated_at"] = clock.now()
        await conn.execute(update(t.people).where(where).values(**changes))
    return person_from_row({**row, **changes})


async def delete_person(*, db: Database, org_id: str, person_id: str) -> None:
    """Delete a person and every device registered to them (in one transaction)."""
    guid = canonical_guid(person_id)
    if guid is None:
        raise _not_found(person_id)
    async with db.write() as conn:
        result = await conn.execute(sql_delete(t.people).where(
            _P.org_id == org_id, _P.id == guid))
        if result.rowcount == 0:
            raise _not_found(person_id)
        # A person's device tokens are personal data too: they go with the person.
        await conn.execute(sql_delete(t.devices).where(
            t.devices.c.org_id == org_id, t.devices.c.person_id == guid))


def lookup_email(value: str) -> str:
    """The stored form of an email to look up; a malformed one is compared as lower-case text
    (it then finds nobody, which is the truthful answer to a lookup)."""
    try:
        return normalize_email(value)
    except InvalidInput:
        return value.strip().lower()


def lookup_phone(value: str, region: str | None) -> str:
    """The stored form of a phone number to look up. A number libphonenumber does not know
    is accepted here: imports store such numbers (in E.164) and they must be found."""
    return normalize_phone(value, default_region=region, warnings=[])


async def list_people(*, db: Database, org_id: str, settings: Settings | None = None,
                      kind: str | None = None, email: str | None = None,
                      phone: str | None = None, limit: int = 100,
                      cursor: str | None = None) -> PersonPage:
    """People of the org in id order, optionally only one kind or those with an email or phone
    (phone normalised first, so any written form of the number finds it). Keyset paging: pass
    ``next_cursor`` back as ``cursor``."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit {limit} is out of range", field="limit",
                           fix=f"Use a limit from 1 to {MAX_PAGE}; page on with cursor.")
    query = select(t.people).where(_P.org_id == org_id)
    if kind is not None:
        query = query.where(_P.kind == person_kind(kind))
    if email is not None:
        query = query.where(_P.email == lookup_email(email))
    if phone is not None:
        region = settings.default_phone_region if settings is not None else None
        query = query.where(_P.phone == lookup_phone(phone, region))
    if cursor is not None:
        after = canonical_guid(cursor)
        if after is None:
            raise InvalidInput(f"cursor {cursor!r} is not one this API gave", field="cursor",
                               fix="Pass back the next_cursor of the previous page unchanged.")
        query = query.where(_P.id > after)
    async with db.read() as conn:
        rows = (await conn.execute(query.order_by(_P.id).limit(limit + 1))).mappings().all()
    items = [person_from_row(r) for r in rows[:limit]]
    return PersonPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None)


async def existing_people(*, db: Database, org_id: str,
                          person_ids: Collection[str]) -> dict[str, str]:
    """``{id: kind}`` for those of ``person_ids`` that are people of the org, keyed by the id as
    given (GUIDs are matched case-insensitively; a non-GUID is simply absent). One read
    connection, one query per 500 distinct ids."""
    wanted: dict[str, list[str]] = {}
    for given in person_ids:
        guid = canonical_guid(given)
        if guid is not None:
            wanted.setdefault(guid, []).append(given)
    found: dict[str, str] = {}
    if not wanted:
        return found
    keys = list(wanted)
    async with db.read() as conn:
        for start in range(0, len(keys), IN_CHUNK):
            chunk = keys[start:start + IN_CHUNK]
            rows = await conn.execute(select(_P.id, _P.kind).where(
                _P.org_id == org_id, _P.id.in_(chunk)))
            for row in rows:
                for given in wanted[row.id]:
                    found[given] = row.kind
    return found


# --- CIJ OData -------------------------------------------------------------------------------

_ODATA_COLUMNS = {"emailaddress1": _P.email, "mobilephone": _P.phone,
                  "firstname": _P.first_name, "lastname": _P.last_name}
_KIND_OF: dict[odata.Entity, str] = {"contacts": "contact", "leads": "lead"}


def _odata_condition(node: odata.Node, region: str | None) -> ColumnElement[bool]:
    if isinstance(node, odata.And):
        return and_(*(_odata_condition(item, region) for item in node.items))
    if isinstance(node, odata.Or):
        return or_(*(_odata_condition(item, region) for item in node.items))
    if node.field not in _ODATA_COLUMNS:  # contactid / leadid: the parser checked the GUID
        return false() if node.value is None else _P.id == node.value
    column = _ODATA_COLUMNS[node.field]
    if node.value is None:
        return column.is_(None)
    if node.field == "emailaddress1":
        return column == lookup_email(node.value)
    if node.field == "mobilephone":
        try:
            return column == lookup_phone(node.value, region)
        except InvalidInput:
            return column == node.value.strip()  # not a number we could store: finds nobody
    # Dataverse compares text case-insensitively (its collation); lower() both sides in SQL so
    # each database folds both sides the same way.
    return func.lower(column) == func.lower(literal(node.value))


async def odata_query(*, db: Database, org_id: str, entity: odata.Entity, filter: str | None,
                      select: str | None, top: str | None,
                      settings: Settings | None = None) -> list[dict[str, Any]]:
    """Rows of the CIJ entity set (``contacts`` or ``leads``) matching the OData subset, in id
    order, with CIJ's field names. Raises ``odata.ODataError`` (400) for anything outside the
    subset, before touching the database."""
    if entity not in _KIND_OF:
        raise InvalidInput(f"{entity!r} is not an entity set Clarion serves",
                           fix="Use contacts or leads.")
    fields = odata.parse_select(select, entity) if select is not None else odata.fields_of(entity)
    limit = odata.parse_top(top, entity) if top is not None else odata.DEFAULT_TOP
    region = settings.default_phone_region if settings is not None else None
    query = t.people.select().where(_P.org_id == org_id, _P.kind == _KIND_OF[entity])
    if filter is not None:
        query = query.where(_odata_condition(odata.parse_filter(filter, entity), region))
    async with db.read() as conn:
        rows = (await conn.execute(query.order_by(_P.id).limit(limit))).mappings().all()
    id_field = odata.ID_FIELD[entity]
    source = {id_field: "id", "emailaddress1": "email", "mobilephone": "phone",
              "firstname": "first_name", "lastname": "last_name"}
    return [{name: row[source[name]] for name in fields} for row in rows]
