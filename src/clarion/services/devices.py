"""A person's devices as Clarion holds them, with their state and its reason; tracked
registration requests and why they ended as they did."""

from __future__ import annotations

from clarion.domain.devices import STATES, DeviceRead, RegistrationRead
from clarion.domain.people import canonical_guid
from clarion.errors import InvalidInput, NotFound
from clarion.services.apps import require_app
from clarion.services.orgs import require_org
from clarion.services.people import require_person
from clarion.store import devices as store
from clarion.store.db import Database


class Devices:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(self, org_id: str, *, app_id: str | None = None,
                   person_id: str | None = None, state: str | None = None, limit: int = 100,
                   after: str | None = None) -> list[DeviceRead]:
        if state is not None and state not in STATES:
            raise InvalidInput(f"unknown device state {state!r}", field="state",
                               fix=f"Use one of: {', '.join(STATES)}.")
        if person_id is not None:  # GUIDs in any case, as people are looked up
            person_id = canonical_guid(person_id) or person_id
        async with self._db.read() as conn:
            rows = await store.page(conn, org_id, app_id=app_id, person_id=person_id,
                                    state=state, after=after, limit=max(1, min(limit, 1000)))
            if not rows:  # say so when a filter names something that does not exist
                await require_org(conn, org_id)
                if app_id is not None:
                    await require_app(conn, org_id, app_id, field="app_id")
                if person_id is not None:
                    await require_person(conn, org_id, person_id, field="person_id")
        return rows

    async def registration(self, org_id: str, request_id: str) -> RegistrationRead:
        async with self._db.read() as conn:
            found = await store.registration(conn, org_id, request_id)
            if found is None:
                await require_org(conn, org_id)
        if found is None:
            raise NotFound(f"registration request {request_id} is unknown",
                           fix="Only requests sent with x-ms-track-registration: true are "
                           "kept, and only for the retention period (CLARION_REGISTRATION_"
                           "STATUS_RETENTION_DAYS).")
        return found
