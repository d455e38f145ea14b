"""Push messages (designed, personalised) and the org settings their placeholders read.

Thin: parse, call one method of the ``Messages`` service, serialise. A template error is a 400
naming the field and the line and column, at save time.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status

from clarion.api.deps import AdminOrg, MessagesDep
from clarion.api.intake import CheckedRoute
from clarion.api.schemas.errors import ADMIN_ERRORS
from clarion.api.schemas.messages import (
    PreviewRead,
    PreviewRequest,
    PushMessageIn,
    PushMessageRead,
    TestSendRequest,
)
from clarion.api.schemas.sends import SendRead

router = APIRouter(prefix="/v1/orgs/{org_id}", route_class=CheckedRoute,
                   responses=ADMIN_ERRORS)


@router.post("/messages", status_code=status.HTTP_201_CREATED, tags=["messages"])
async def create_message(org_id: AdminOrg, body: PushMessageIn,
                         messages: MessagesDep) -> PushMessageRead:
    """Save a push message. Title, subtitle, body, on_click.url and data values are templates:
    `{{Name}}` and `{{#if A}}…{{else if B}}…{{else}}…{{/if}}`, with every name declared under
    `placeholders`. A template error is a 400 naming the field, line and column."""
    return await messages.create(org_id, body)


@router.get("/messages", tags=["messages"])
async def list_messages(
    org_id: AdminOrg, messages: MessagesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000, cursor: str | None = None,
) -> list[PushMessageRead]:
    """The org's push messages by id (paged by `cursor` = the last id of a page)."""
    return await messages.of_org(org_id, after=cursor, limit=limit)


@router.get("/messages/{message_id}", tags=["messages"])
async def get_message(org_id: AdminOrg, message_id: str,
                      messages: MessagesDep) -> PushMessageRead:
    return await messages.get(org_id, message_id)


@router.put("/messages/{message_id}", tags=["messages"])
async def replace_message(org_id: AdminOrg, message_id: str, body: PushMessageIn,
                          messages: MessagesDep) -> PushMessageRead:
    """Replace the document (sends already queued keep the version they were made with)."""
    return await messages.replace(org_id, message_id, body)


@router.delete("/messages/{message_id}", status_code=status.HTTP_204_NO_CONTENT,
               response_class=Response, tags=["messages"])
async def delete_message(org_id: AdminOrg, message_id: str, messages: MessagesDep) -> Response:
    await messages.delete(org_id, message_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/messages/{message_id}/preview", tags=["messages"])
async def preview_message(org_id: AdminOrg, message_id: str, body: PreviewRequest,
                          messages: MessagesDep) -> PreviewRead:
    """The message rendered for a person (and trigger data), and the payload each platform's
    device would receive with its size against the provider's limit."""
    return PreviewRead.of(await messages.preview(org_id, message_id, body.user_id,
                                                 body.trigger_data))


@router.post("/messages/{message_id}/test", status_code=status.HTTP_202_ACCEPTED,
             tags=["messages"])
async def test_message(org_id: AdminOrg, message_id: str, body: TestSendRequest,
                       messages: MessagesDep) -> SendRead:
    """Send the message to the person's valid devices now, as CIJ's test send: an empty
    `trackingId` and an untracked link. Follow it with GET /v1/orgs/{org}/sends/{id}."""
    accepted = await messages.test(org_id, message_id, body.user_id, body.trigger_data)
    return accepted.send


@router.get("/settings", tags=["settings"])
async def get_settings(org_id: AdminOrg, messages: MessagesDep) -> dict[str, str]:
    """The org's settings, read by placeholders whose source is `org`."""
    return await messages.settings(org_id)


@router.put("/settings", tags=["settings"])
async def put_settings(
    org_id: AdminOrg, messages: MessagesDep,
    body: Annotated[dict[str, Any], Body(description="Setting name → string value (at most "
                                          "100), e.g. {\"support_phone\": \"+1 555 0100\"}.")],
) -> dict[str, str]:
    """Replace the org's settings."""
    return await messages.put_settings(org_id, body)
