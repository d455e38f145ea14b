"""Native people API: CRUD and lookup by email or phone (``/v1/orgs/{org_id}/people``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from clarion.api.deps import AdminOrg, PeopleDep
from clarion.api.intake import CheckedRoute
from clarion.api.schemas.errors import ADMIN_ERRORS, error
from clarion.api.schemas.people import Kind, PersonCreate, PersonPage, PersonRead, PersonUpdate

router = APIRouter(prefix="/v1/orgs/{org_id}/people", tags=["people"],
                   route_class=CheckedRoute, responses=ADMIN_ERRORS)


@router.post("", status_code=201,
             responses={409: error("A person with that id already exists in the org.")})
async def create_person(org_id: AdminOrg, people: PeopleDep,
                        body: PersonCreate) -> PersonRead:
    return await people.create(org_id, body.model_dump(exclude_unset=True))


@router.get("")
async def list_people(
    org_id: AdminOrg, people: PeopleDep,
    kind: Kind | None = None,
    email: Annotated[str | None, Query(description="Exact email (case-insensitive).")] = None,
    phone: Annotated[str | None, Query(description="Any written form of the number.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
) -> PersonPage:
    return await people.page(org_id, kind=kind, email=email, phone=phone, limit=limit,
                             cursor=cursor)


@router.get("/{person_id}")
async def get_person(org_id: AdminOrg, people: PeopleDep, person_id: str) -> PersonRead:
    return await people.get(org_id, person_id)


@router.patch("/{person_id}")
async def update_person(org_id: AdminOrg, people: PeopleDep, person_id: str,
                        body: PersonUpdate) -> PersonRead:
    return await people.update(org_id, person_id, body.model_dump(exclude_unset=True))


@router.delete("/{person_id}", status_code=204)
async def delete_person(org_id: AdminOrg, people: PeopleDep, person_id: str) -> Response:
    await people.delete(org_id, person_id)
    return Response(status_code=204)
