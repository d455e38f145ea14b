"""CIJ-compatible OData lookup of contacts and leads (``/api/data/v9.0/contacts|leads``).

Token backends written against CIJ map an app user to a person with Dataverse's Web API; they
keep working once their base URL points at Clarion. The org is the one the admin bearer token
belongs to (in Dataverse the org is the host name, so the path carries no org id). The supported
subset and its refusals are described in ``clarion.domain.odata``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from clarion.api.deps import PeopleDep, SettingsDep, TokenOrg
from clarion.api.intake import CheckedRoute
from clarion.api.responses import JSON
from clarion.api.schemas.errors import ODATA_ERRORS
from clarion.config import Settings
from clarion.domain import odata
from clarion.services.people import People

router = APIRouter(tags=["cij"], route_class=CheckedRoute, responses=ODATA_ERRORS)


class ODataPage(BaseModel):
    """An OData collection as Dataverse writes it (OData 4.0 JSON Format §12)."""

    model_config = ConfigDict(populate_by_name=True)

    context: str = Field(alias="@odata.context", description="The $metadata URL of the rows.")
    value: list[dict[str, str | None]] = Field(
        description="The rows: the id field first, then the selected fields.")


_ANSWER: dict[int | str, dict[str, Any]] = {200: {"model": ODataPage}}


async def _query(entity: odata.Entity, request: Request, people: People, settings: Settings,
                 org_id: str) -> Response:
    """The org is the one of the admin bearer token (Dataverse reads it from the host name)."""
    options = odata.query_options(request.query_params.multi_items(), entity)
    rows = await people.odata_query(org_id, entity, filter=options.get("$filter"),
                                    select=options.get("$select"), top=options.get("$top"))
    select = odata.parse_select(options["$select"], entity) if "$select" in options else None
    body: dict[str, Any] = {
        "@odata.context": odata.context(settings.public_url, entity, select),
        "value": rows,
    }
    return JSON(body, headers={"OData-Version": "4.0"})


@router.get("/api/data/v9.0/contacts", response_class=JSON, responses=_ANSWER,
            summary="Look up contacts (OData subset: eq, and, or, $select, $top)")
async def contacts(request: Request, people: PeopleDep, settings: SettingsDep,
                   org_id: TokenOrg) -> Response:
    return await _query("contacts", request, people, settings, org_id)


@router.get("/api/data/v9.0/leads", response_class=JSON, responses=_ANSWER,
            summary="Look up leads (OData subset: eq, and, or, $select, $top)")
async def leads(request: Request, people: PeopleDep, settings: SettingsDep,
                org_id: TokenOrg) -> Response:
    return await _query("leads", request, people, settings, org_id)
