"""Sends: a message to every currently valid device of a person (or several) for one app."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from clarion.api.deps import AdminOrg, SendsDep
from clarion.api.intake import CheckedRoute
from clarion.api.schemas.errors import ADMIN_ERRORS
from clarion.api.schemas.sends import SendCreate, SendRead

router = APIRouter(prefix="/v1/orgs/{org_id}/sends", tags=["sends"],
                   route_class=CheckedRoute, responses=ADMIN_ERRORS)


@router.post("", status_code=202, responses={200: {"model": SendRead,
             "description": "An earlier send with the same Idempotency-Key (within 24 h)."}})
async def create_send(
    org_id: AdminOrg, body: SendCreate, sends: SendsDep, response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> SendRead:
    """Queue a send. With `Idempotency-Key`, a repeat within 24 h returns the same send (200)
    and nothing is sent twice."""
    accepted = await sends.create(org_id, body, idempotency_key=idempotency_key)
    if not accepted.created:
        response.status_code = 200
    return accepted.send


@router.get("/{send_id}")
async def get_send(
    org_id: AdminOrg, send_id: str, sends: SendsDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000, cursor: str | None = None,
) -> SendRead:
    """The send with its per-device outcomes (paged by `cursor` = last delivery id)."""
    return await sends.get(org_id, send_id, limit=limit, after=cursor)
