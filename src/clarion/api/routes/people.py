"""Native people API: CRUD and lookup by email or phone (``/v1/orgs/{org_id}/people``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from clarion.api.deps import AdminOrg, ContainerDep
from clarion.api.intake import CheckedRoute
from clarion.api.schemas.errors import ADMIN_ERRORS, error
from clarion.api.schemas.people import Kind, PersonCreate, PersonPage, PersonRead, PersonUpdate
from clarion.services import people

router = APIRouter(prefix="/v1/orgs/{org_id}/people", tags=["people"],
                   route_class=CheckedRoute, responses=ADMIN_ERRORS)


@router.post("", status_code=201,
             responses={409: error("A person with that id already exists in the org.")})
async def create_person(org_id: AdminOrg, container: ContainerDep,
                        body: PersonCreate) -> PersonRead:
    person = await people.create_person(
        db=container.db, clock=container.clock, settings=container.settings, org_id=org_id,
        data=body.model_dump(exclude_unset=True))
    return PersonRead.of(person)


@router.get("")
async def list_people(
    org_id: AdminOrg, container: ContainerDep,
    kind: Kind | None = None,
    email: Annotated[str | None, Query(description="Exact email (case-insensitive).")] = None,
    phone: Annotated[str | None, Query(description="Any written form of the number.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
) -> PersonPage:
    page = await people.list_people(
        db=container.db, org_id=org_id, settings=container.settings, kind=kind, email=email,
        phone=phone, limit=limit, cursor=cursor)
    return PersonPage.of(page)


@router.get("/{person_id}")
async def get_person(org_id: AdminOrg, container: ContainerDep, person_id: str) -> PersonRead:
    return PersonRead.of(await people.get_person(db=container.db, org_id=org_id,
                                                 person_id=person_id))


@router.patch("/{person_id}")
async def update_person(org_id: AdminOrg, container: ContainerDep, person_id: str,
                        body: PersonUpdate) -> PersonRead:
    person = await people.update_person(
        db=container.db, clock=container.clock, settings=container.settings, org_id=org_id,
        person_id=person_id, data=body.model_dump(exclude_unset=True))
    return PersonRead.of(person)


@router.delete("/{person_id}", status_code=204)
async def delete_person(org_id: AdminOrg, container: ContainerDep, person_id: str) -> Response:
    await people.delete_person(db=container.db, org_id=org_id, person_id=person_id)
    return Response(status_code=204)
