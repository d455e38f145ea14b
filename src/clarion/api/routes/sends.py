"""Sends: a message to every currently valid device of a person (or several) for one app."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel, Field

from clarion.api.deps import AdminOrg, ContainerDep
from clarion.api.intake import CheckedRoute
from clarion.api.schemas.errors import ADMIN_ERRORS
from clarion.services import sending

router = APIRouter(prefix="/v1/orgs/{org_id}/sends", tags=["sends"],
                   route_class=CheckedRoute, responses=ADMIN_ERRORS)


class MessageCreate(BaseModel):
    title: str = Field("", max_length=256)
    subtitle: str = Field("", max_length=256)
    body: str = Field("", max_length=4000)
    image_url: str | None = Field(None, description="https URL of an image (2:1).")
    link: str | None = Field(None, description="Opened on tap: https URL or app link.")
    data: dict[str, str] = Field(default_factory=dict, description="Custom string values.")
    ttl: int = Field(2419200, ge=0, le=2419200, description="Seconds the providers keep trying.")
    priority: str = Field("high", pattern="^(high|normal)$")
    collapse_key: str | None = Field(None, min_length=1, max_length=64)


class SendCreate(BaseModel):
    app_id: str
    user_id: str | None = Field(None, description="One person (contact, lead or profile).")
    user_ids: list[str] | None = Field(None, description="Or several people.")
    message: MessageCreate


class DeliveryRead(BaseModel):
    id: str
    person_id: str
    device_id: str
    platform: str
    state: str
    reason: str | None
    detail: str | None
    provider_id: str | None
    attempts: int
    updated_at: datetime


class SendRead(BaseModel):
    id: str
    app_id: str
    user_ids: list[str]
    message: dict[str, Any]
    state: str = Field(description="queued, fanning_out, sending or done")
    created_at: datetime
    expires_at: datetime
    counts: dict[str, int] = Field(description="Deliveries per state.")
    succeeded: bool | None = Field(
        description="True once a device accepted it; false when done with none; null before.")
    deliveries: list[DeliveryRead]


def _read(send: sending.SendRead) -> SendRead:
    return SendRead.model_validate(asdict(send))


@router.post("", status_code=202, responses={200: {"model": SendRead,
             "description": "An earlier send with the same Idempotency-Key (within 24 h)."}})
async def create_send(
    org_id: AdminOrg, body: SendCreate, container: ContainerDep, response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> SendRead:
    """Queue a send. With `Idempotency-Key`, a repeat within 24 h returns the same send (200)
    and nothing is sent twice."""
    send = await sending.create_send(
        db=container.db, queue=container.queue, clock=container.clock, org_id=org_id,
        document=body.model_dump(exclude_none=True), idempotency_key=idempotency_key)
    if not send.created:
        response.status_code = 200
    return _read(send)


@router.get("/{send_id}")
async def get_send(
    org_id: AdminOrg, send_id: str, container: ContainerDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000, cursor: str | None = None,
) -> SendRead:
    """The send with its per-device outcomes (paged by `cursor` = last delivery id)."""
    return _read(await sending.get_send(db=container.db, org_id=org_id, send_id=send_id,
                                        limit=limit, after=cursor))
