"""Custom trigger use cases: declare (typed attributes), list, delete, and fire.

A fire is validated against the declaration, stored, and published on the event bus
(``trigger.<name>``) in one transaction: it is published if and only if it is stored. With an
idempotency key, a repeat finds the first fire and answers it again; nothing is stored or
published twice (the key is unique per trigger, so concurrent repeats cannot both win).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clarion.clock import Clock
from clarion.domain.people import canonical_guid
from clarion.domain.triggers import (
    MAX_IDEMPOTENCY_KEY,
    TriggerEvent,
    TriggerRead,
    check_data,
    check_declaration,
    check_trigger_name,
)
from clarion.errors import Conflict, InvalidInput, NotFound
from clarion.ids import new_id
from clarion.services.events import publish_trigger
from clarion.services.orgs import require_org
from clarion.services.people import missing_person
from clarion.store import people as people_store
from clarion.store import triggers as store
from clarion.store.db import Conn, Database, Duplicate
from clarion.store.jobs import JobQueue

MAX_LIST = 1000  # triggers per listing page (one more is read to know if more follow)


@dataclass(frozen=True, slots=True)
class Fired:
    event: TriggerEvent
    created: bool  # False: an earlier fire with the same idempotency key


def _not_found(org_id: str, name: str) -> NotFound:
    return NotFound(f"trigger {name!r} is not declared in organization {org_id}",
                    fix=f"Declare it first: `clarion triggers create --org {org_id} {name} "
                    "--attribute key=type` (POST /v1/orgs/{org}/triggers), or check the name "
                    "with `clarion triggers list`.")


class Triggers:
    def __init__(self, db: Database, clock: Clock, queue: JobQueue) -> None:
        self._db = db
        self._clock = clock
        self._queue = queue

    async def create(self, org_id: str, data: Mapping[str, Any]) -> TriggerRead:
        name = data.get("name")
        if not isinstance(name, str):
            raise InvalidInput("name is missing", field="name",
                               fix="Give the trigger a name such as cart_abandoned.")
        name = check_trigger_name(name)
        attributes = data.get("attributes") or {}
        if not isinstance(attributes, Mapping):
            raise InvalidInput("attributes must be an object", field="attributes",
                               fix='Declare e.g. {"cart_total": "number", "city": "string"}.')
        row = {"id": new_id(), "org_id": org_id, "name": name,
               "attributes": check_declaration(attributes), "created_at": self._clock.now()}
        try:
            async with self._db.write() as conn:
                await require_org(conn, org_id)
                if await store.by_name(conn, org_id, name) is not None:
                    raise _taken(name)
                return await store.insert_trigger(conn, row)
        except Duplicate as exc:
            raise _taken(name) from exc

    async def get(self, org_id: str, name: str) -> TriggerRead:
        async with self._db.read() as conn:
            return await self._require(conn, org_id, name)

    async def all(self, org_id: str, *, after: str | None = None,
                  limit: int = 100) -> list[TriggerRead]:
        async with self._db.read() as conn:
            await require_org(conn, org_id)
            return await store.page(conn, org_id, after, max(1, min(limit, MAX_LIST + 1)))

    async def delete(self, org_id: str, name: str) -> None:
        """Delete the declaration and its stored fires (published fires stay published)."""
        async with self._db.write() as conn:
            trigger = await self._require(conn, org_id, name)
            await store.delete_trigger(conn, org_id, trigger.id)

    async def fire(self, org_id: str, name: str, user_id: str, data: Mapping[str, Any],
                   idempotency_key: str | None = None) -> Fired:
        """Validate, store and publish a fire of ``name`` for the person ``user_id``."""
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            raise InvalidInput("the Idempotency-Key must be 1 to 200 characters",
                               field="Idempotency-Key", fix="Send a shorter key, e.g. a UUID.")
        if not isinstance(data, Mapping):
            raise InvalidInput("data must be an object", field="data",
                               fix='Send e.g. {"cart_total": 72.5}.')
        now = self._clock.now()
        try:
            async with self._db.write() as conn:
                person = canonical_guid(user_id)
                if person is None or not await people_store.exists(conn, org_id, person):
                    raise await missing_person(conn, org_id, user_id, field="user_id")
                trigger = await self._require(conn, org_id, name)
                if idempotency_key is not None:
                    earlier = await store.firing_by_key(conn, trigger.id, idempotency_key)
                    if earlier is not None:
                        return Fired(earlier, created=False)
                values = check_data(trigger.attributes, data, trigger.name)
                event = await store.insert_firing(conn, {
                    "id": new_id(), "org_id": org_id, "trigger_id": trigger.id,
                    "trigger": trigger.name, "person_id": person, "data": values,
                    "idempotency_key": idempotency_key, "fired_at": now})
                await publish_trigger(conn, self._queue, event.id,
                                      now_ms=self._clock.epoch_ms())
                return Fired(event, created=True)
        except Duplicate:
            # A concurrent fire with the same key committed first: answer it.
            assert idempotency_key is not None
            async with self._db.read() as conn:
                trigger = await self._require(conn, org_id, name)
                earlier = await store.firing_by_key(conn, trigger.id, idempotency_key)
            assert earlier is not None
            return Fired(earlier, created=False)

    async def _require(self, conn: Conn, org_id: str, name: str) -> TriggerRead:
        trigger = await store.by_name(conn, org_id, name)
        if trigger is None:
            await require_org(conn, org_id)
            raise _not_found(org_id, name)
        return trigger


def _taken(name: str) -> Conflict:
    return Conflict(f"a trigger named {name!r} already exists in this organization",
                    field="name", fix="Choose another name, or delete that trigger first.")
