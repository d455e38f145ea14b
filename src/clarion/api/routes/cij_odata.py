"""CIJ-compatible OData lookup of contacts and leads (``/api/data/v9.0/contacts|leads``).

Token backends written against CIJ map an app user to a person with Dataverse's Web API; they
keep working once their base URL points at Clarion. The org is the one the admin bearer token
belongs to (in Dataverse the org is the host name, so the path carries no org id). The supported
subset and its refusals are described in ``clarion.domain.odata``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from clarion.api.deps import ContainerDep
from clarion.api.responses import JSON
from clarion.bootstrap import Container
from clarion.domain import odata
from clarion.errors import Unauthorized
from clarion.services import orgs, people

router = APIRouter(tags=["cij"])
_bearer = HTTPBearer(auto_error=False, description="An admin token from `clarion orgs create`.")


async def token_org(
    container: ContainerDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The org of the admin bearer token (Dataverse reads the org from the host name)."""
    if creds is None or not creds.credentials:
        raise Unauthorized("this endpoint needs an admin token",
                           fix="Send `Authorization: Bearer <admin token>` (from "
                           "`clarion orgs create`).")
    return await orgs.authenticate_admin(db=container.db, token=creds.credentials)


TokenOrg = Annotated[str, Depends(token_org)]


async def _query(entity: odata.Entity, request: Request, container: Container,
                 org_id: str) -> Response:
    options = odata.query_options(request.query_params.multi_items(), entity)
    rows = await people.odata_query(
        db=container.db, org_id=org_id, entity=entity, filter=options.get("$filter"),
        select=options.get("$select"), top=options.get("$top"), settings=container.settings)
    select = odata.parse_select(options["$select"], entity) if "$select" in options else None
    body: dict[str, Any] = {
        "@odata.context": odata.context(container.settings.public_url, entity, select),
        "value": rows,
    }
    return JSON(body, headers={"OData-Version": "4.0"})


@router.get("/api/data/v9.0/contacts", response_class=JSON,
            summary="Look up contacts (OData subset: eq, and, or, $select, $top)")
async def contacts(request: Request, container: ContainerDep, org_id: TokenOrg) -> Response:
    return await _query("contacts", request, container, org_id)


@router.get("/api/data/v9.0/leads", response_class=JSON,
            summary="Look up leads (OData subset: eq, and, or, $select, $top)")
async def leads(request: Request, container: ContainerDep, org_id: TokenOrg) -> Response:
    return await _query("leads", request, container, org_id)
