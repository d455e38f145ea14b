"""People use cases: create, read, update, delete, look up (by email or phone), the CIJ OData
lookup, and the batch existence check device registration and sends rely on.

Every query filters on ``org_id``; an id of another org answers exactly as an unknown id.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

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
from clarion.services.events import EventBus
from clarion.services.orgs import require_org
from clarion.store import people as store
from clarion.store.db import Conn, Database, Duplicate

MAX_PAGE = 1000
_KIND_OF: dict[odata.Entity, str] = {"contacts": "contact", "leads": "lead"}


def person_not_found(org_id: str, person_id: object, *, field: str | None = None
                     ) -> NotFound:
    return NotFound(f"person {person_id} does not exist in organization {org_id}", field=field,
                    fix=f"Look the person up by email or phone: `clarion contacts list --org "
                    f"{org_id} --email …` (GET /v1/orgs/{org_id}/people?email=…).")


async def missing_person(conn: Conn, org_id: str, person_id: object, *,
                         field: str | None = None) -> NotFound:
    """The error for a person who is not one of the org's, or for the org when it does not
    exist (a mistyped org id makes every person unknown)."""
    await require_org(conn, org_id)
    return person_not_found(org_id, person_id, field=field)


async def require_person(conn: Conn, org_id: str, person_id: str, *,
                         field: str | None = None) -> str:
    """The person's canonical id, or NotFound (for the org first, see ``missing_person``)."""
    guid = canonical_guid(person_id)
    if guid is None or not await store.exists(conn, org_id, guid):
        raise await missing_person(conn, org_id, person_id, field=field)
    return guid


def taken(person_id: str) -> Conflict:
    return Conflict(f"a person with id {person_id} already exists in this organization",
                    field="id", fix="Update that person instead (PATCH), or leave id out to get "
                    "a new one.")


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


class People:
    def __init__(self, db: Database, clock: Clock, settings: Settings,
                 events: EventBus | None = None) -> None:
        self._db = db
        self._clock = clock
        self._region = settings.default_phone_region
        self._events = events  # publishes person.created (None: tests without the bus)

    async def create(self, org_id: str, data: Mapping[str, Any]) -> PersonRead:
        values = new_person_values(data, default_region=self._region)
        now = self._clock.now()
        row = {**values, "org_id": org_id, "created_at": now, "updated_at": now}
        try:
            async with self._db.write() as conn:
                await require_org(conn, org_id)
                if await store.exists(conn, org_id, values["id"]):
                    raise taken(values["id"])
                person = await store.insert_person(conn, row)
                if self._events is not None:
                    await self._events.publish_people_created(conn, org_id, [person.id])
                return person
        except Duplicate as exc:  # a concurrent create of the same id
            raise taken(values["id"]) from exc

    async def get(self, org_id: str, person_id: str) -> PersonRead:
        guid = canonical_guid(person_id)
        async with self._db.read() as conn:
            person = None if guid is None else await store.get(conn, org_id, guid)
            if person is None:
                raise await missing_person(conn, org_id, person_id)
        return person

    async def update(self, org_id: str, person_id: str, data: Mapping[str, Any]) -> PersonRead:
        """Change the fields present in ``data``; ``attributes``, when given, replaces them
        all."""
        guid = canonical_guid(person_id)
        if guid is None:
            async with self._db.read() as conn:
                raise await missing_person(conn, org_id, person_id)
        changes = normalize_fields(data, default_region=self._region)
        if changes.pop("id", None) not in (None, guid):
            raise InvalidInput("a person's id cannot change", field="id",
                               fix="Leave id out of the update, or create a new person.")
        async with self._db.write() as conn:
            person = await store.get(conn, org_id, guid)
            if person is None:
                raise await missing_person(conn, org_id, person_id)
            if not changes:
                return person
            changes["updated_at"] = self._clock.now()
            await store.update_person(conn, org_id, guid, changes)
        return replace(person, **changes)

    async def delete(self, org_id: str, person_id: str) -> None:
        """Delete a person and every device registered to them (in one transaction)."""
        guid = canonical_guid(person_id)
        async with self._db.write() as conn:
            if guid is None or not await store.delete_person(conn, org_id, guid):
                raise await missing_person(conn, org_id, person_id)

    async def page(self, org_id: str, *, kind: str | None = None, email: str | None = None,
                   phone: str | None = None, limit: int = 100,
                   cursor: str | None = None) -> PersonPage:
        """People of the org in id order, optionally only one kind or those with an email or
        phone (phone normalised first, so any written form of the number finds it). Keyset
        paging: pass ``next_cursor`` back as ``cursor``."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit {limit} is out of range", field="limit",
                               fix=f"Use a limit from 1 to {MAX_PAGE}; page on with cursor.")
        after = None
        if cursor is not None:
            after = canonical_guid(cursor)
            if after is None:
                raise InvalidInput(f"cursor {cursor!r} is not one this API gave",
                                   field="cursor",
                                   fix="Pass back the next_cursor of the previous page "
                                   "unchanged.")
        async with self._db.read() as conn:
            rows = await store.page(
                conn, org_id, kind=None if kind is None else person_kind(kind),
                email=None if email is None else lookup_email(email),
                phone=None if phone is None else lookup_phone(phone, self._region),
                after=after, limit=limit + 1)
            if not rows:
                await require_org(conn, org_id)
        items = rows[:limit]
        return PersonPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None)

    async def existing(self, org_id: str, person_ids: Collection[str]) -> dict[str, str]:
        """``{id: kind}`` for those of ``person_ids`` that are people of the org, keyed by the
        id as given (GUIDs are matched case-insensitively; a non-GUID is simply absent)."""
        wanted: dict[str, list[str]] = {}
        for given in person_ids:
            guid = canonical_guid(given)
            if guid is not None:
                wanted.setdefault(guid, []).append(given)
        if not wanted:
            return {}
        async with self._db.read() as conn:
            kinds = await store.kinds_of(conn, org_id, wanted)
        return {given: kind for guid, kind in kinds.items() for given in wanted[guid]}

    async def odata_query(self, org_id: str, entity: odata.Entity, *, filter: str | None,
                          select: str | None, top: str | None) -> list[dict[str, Any]]:
        """Rows of the CIJ entity set (``contacts`` or ``leads``) matching the OData subset,
        in id order, with CIJ's field names. Raises ``odata.ODataError`` (400) for anything
        outside the subset, before touching the database."""
        if entity not in _KIND_OF:
            raise InvalidInput(f"{entity!r} is not an entity set Clarion serves",
                               fix="Use contacts or leads.")
        fields = (odata.parse_select(select, entity) if select is not None
                  else odata.fields_of(entity))
        limit = odata.parse_top(top, entity) if top is not None else odata.DEFAULT_TOP
        condition = None
        if filter is not None:
            condition = self._stored_forms(odata.parse_filter(filter, entity))
        async with self._db.read() as conn:
            rows = await store.odata_rows(conn, org_id, _KIND_OF[entity], condition, limit)
        source = {odata.ID_FIELD[entity]: "id", "emailaddress1": "email",
                  "mobilephone": "phone", "firstname": "first_name", "lastname": "last_name"}
        return [{name: getattr(row, source[name]) for name in fields} for row in rows]

    def _stored_forms(self, node: odata.Node) -> odata.Node:
        """The filter with emails and phone numbers written as they are stored."""
        if isinstance(node, odata.And | odata.Or):
            return type(node)(tuple(self._stored_forms(item) for item in node.items))
        if node.value is None:
            return node
        if node.field == "emailaddress1":
            return replace(node, value=lookup_email(node.value))
        if node.field == "mobilephone":
            try:
                return replace(node, value=lookup_phone(node.value, self._region))
            except InvalidInput:
                return replace(node, value=node.value.strip())  # finds nobody, truthfully
        return node
