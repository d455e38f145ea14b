"""Custom triggers: declare them with typed attributes, fire them for a person
(``/v1/orgs/{org_id}/triggers``). A fire is published to journeys as ``trigger.<name>``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from clarion.api.deps import AdminOrg, TriggersDep
from clarion.api.intake import CheckedRoute
from clarion.api.schemas.errors import ADMIN_ERRORS, error
from clarion.api.schemas.triggers import (
    FireAccepted,
    FireRequest,
    TriggerCreate,
    TriggerPage,
    TriggerRead,
)

router = APIRouter(prefix="/v1/orgs/{org_id}/triggers", tags=["triggers"],
                   route_class=CheckedRoute, responses=ADMIN_ERRORS)


@router.post("", status_code=201,
             responses={409: error("A trigger with that name already exists in the org.")})
async def create_trigger(org_id: AdminOrg, triggers: TriggersDep,
                         body: TriggerCreate) -> TriggerRead:
    return await triggers.create(org_id, body.model_dump())


@router.get("")
async def list_triggers(
    org_id: AdminOrg, triggers: TriggersDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
) -> TriggerPage:
    items = await triggers.all(org_id, after=cursor, limit=limit + 1)
    page = items[:limit]
    return TriggerPage(page, page[-1].name if len(items) > limit else None)


@router.get("/{name}")
async def get_trigger(org_id: AdminOrg, triggers: TriggersDep, name: str) -> TriggerRead:
    return await triggers.get(org_id, name)


@router.delete("/{name}", status_code=204)
async def delete_trigger(org_id: AdminOrg, triggers: TriggersDep, name: str) -> Response:
    await triggers.delete(org_id, name)
    return Response(status_code=204)


@router.post("/{name}/fire", status_code=202)
async def fire_trigger(
    org_id: AdminOrg, triggers: TriggersDep, name: str, body: FireRequest,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> FireAccepted:
    """Fire the trigger for a person. With `Idempotency-Key`, a repeat answers the first fire
    again (same body) and publishes nothing new."""
    fired = await triggers.fire(org_id, name, body.user_id, body.data, idempotency_key)
    return FireAccepted.of(fired.event)
