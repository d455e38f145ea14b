"""Native device API: a person's devices with their state and its reason."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from clarion.api.deps import AdminOrg, DevicesDep
from clarion.api.intake import CheckedRoute
from clarion.api.schemas.devices import DevicePage, RegistrationRead
from clarion.api.schemas.errors import ADMIN_ERRORS
from clarion.domain.devices import DeviceState
from clarion.services.devices import Devices

router = APIRouter(prefix="/v1/orgs/{org_id}", tags=["devices"],
                   route_class=CheckedRoute, responses=ADMIN_ERRORS)

State = Annotated[DeviceState | None, Query()]
Limit = Annotated[int, Query(ge=1, le=1000)]


async def _page(devices: Devices, org_id: str, limit: int, **filters: str | None
                ) -> DevicePage:
    items = await devices.page(org_id, limit=limit, **filters)
    return DevicePage(items=items, next_cursor=items[-1].id if len(items) == limit else None)


@router.get("/people/{person_id}/devices")
async def person_devices(
    org_id: AdminOrg, person_id: str, devices: DevicesDep, app_id: str | None = None,
    state: State = None, limit: Limit = 100, cursor: str | None = None,
) -> DevicePage:
    """Every device Clarion holds for a person (all apps unless `app_id` is given)."""
    return await _page(devices, org_id, limit, person_id=person_id, app_id=app_id,
                       state=state, after=cursor)


@router.get("/apps/{app_id}/devices")
async def app_devices(
    org_id: AdminOrg, app_id: str, devices: DevicesDep, user_id: str | None = None,
    state: State = None, limit: Limit = 100, cursor: str | None = None,
) -> DevicePage:
    """An app's devices, optionally for one user and one state."""
    return await _page(devices, org_id, limit, app_id=app_id, person_id=user_id, state=state,
                       after=cursor)


@router.get("/registrations/{request_id}")
async def registration_detail(org_id: AdminOrg, request_id: str, devices: DevicesDep
                              ) -> RegistrationRead:
    """A tracked registration request with Clarion's sentence about its outcome."""
    return await devices.registration(org_id, request_id)
