"""Native device API: a person's devices with their state and its reason."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from clarion.api.deps import AdminOrg, ContainerDep
from clarion.api.intake import CheckedRoute
from clarion.api.schemas.errors import ADMIN_ERRORS
from clarion.services import devices

router = APIRouter(prefix="/v1/orgs/{org_id}", tags=["devices"],
                   route_class=CheckedRoute, responses=ADMIN_ERRORS)


class DeviceRead(BaseModel):
    id: str
    app_id: str
    person_id: str
    platform: str
    token: str
    state: Literal["active", "invalid", "mismatch"]
    state_reason: str | None
    state_changed_at: datetime | None
    created_at: datetime
    last_registered_at: datetime


class DevicePage(BaseModel):
    items: list[DeviceRead]
    next_cursor: str | None


class RegistrationRead(BaseModel):
    id: str
    app_id: str
    kind: str
    user_id: str
    token_kind: str | None
    status: str
    failure_reason: str | None
    detail: str | None
    created_at: datetime
    finished_at: datetime | None


State = Annotated[Literal["active", "invalid", "mismatch"] | None, Query()]
Limit = Annotated[int, Query(ge=1, le=1000)]


async def _page(container: ContainerDep, org_id: str, limit: int, **filters: str | None
                ) -> DevicePage:
    rows = await devices.list_devices(db=container.db, org_id=org_id, limit=limit, **filters)
    items = [DeviceRead.model_validate(r, from_attributes=True) for r in rows]
    return DevicePage(items=items, next_cursor=items[-1].id if len(items) == limit else None)


@router.get("/people/{person_id}/devices")
async def person_devices(
    org_id: AdminOrg, person_id: str, container: ContainerDep, app_id: str | None = None,
    state: State = None, limit: Limit = 100, cursor: str | None = None,
) -> DevicePage:
    """Every device Clarion holds for a person (all apps unless `app_id` is given)."""
    return await _page(container, org_id, limit, person_id=person_id, app_id=app_id,
                       state=state, after=cursor)


@router.get("/apps/{app_id}/devices")
async def app_devices(
    org_id: AdminOrg, app_id: str, container: ContainerDep, user_id: str | None = None,
    state: State = None, limit: Limit = 100, cursor: str | None = None,
) -> DevicePage:
    """An app's devices, optionally for one user and one state."""
    return await _page(container, org_id, limit, app_id=app_id, person_id=user_id, state=state,
                       after=cursor)


@router.get("/registrations/{request_id}")
async def registration_detail(org_id: AdminOrg, request_id: str, container: ContainerDep
                              ) -> RegistrationRead:
    """A tracked registration request with Clarion's sentence about its outcome."""
    row = await devices.get_registration(db=container.db, org_id=org_id, request_id=request_id)
    return RegistrationRead.model_validate(row, from_attributes=True)
