"""Organizations (creating one is an operator's act, `clarion orgs create`) and their admin
tokens: list, issue, revoke."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from clarion.api.deps import AdminOrg, ContainerDep
from clarion.api.intake import CheckedRoute
from clarion.api.schemas.errors import ADMIN_ERRORS, error
from clarion.services import orgs

router = APIRouter(prefix="/v1/orgs", tags=["orgs"],
                   route_class=CheckedRoute, responses=ADMIN_ERRORS)


class OrgRead(BaseModel):
    id: str
    name: str


@router.get("/{org_id}")
async def get_org(org_id: AdminOrg, container: ContainerDep) -> OrgRead:
    org = await orgs.get_org(db=container.db, org_id=org_id)
    return OrgRead(id=org.id, name=org.name)


class AdminTokenRead(BaseModel):
    id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


class AdminTokenList(BaseModel):
    items: list[AdminTokenRead]


class AdminTokenCreate(BaseModel):
    name: str = Field("admin", min_length=1, max_length=200,
                      description="Who or what uses it (shown when listing).")


class AdminTokenCreatedRead(BaseModel):
    id: str
    name: str
    admin_token: str = Field(description="The token itself: shown once, only its hash is kept.")


def _read(tok: orgs.AdminToken) -> AdminTokenRead:
    return AdminTokenRead(id=tok.id, name=tok.name, created_at=tok.created_at,
                          revoked_at=tok.revoked_at)


@router.get("/{org_id}/admin-tokens")
async def list_admin_tokens(org_id: AdminOrg, container: ContainerDep) -> AdminTokenList:
    """The org's admin tokens (never their values)."""
    tokens = await orgs.list_admin_tokens(db=container.db, org_id=org_id)
    return AdminTokenList(items=[_read(x) for x in tokens])


@router.post("/{org_id}/admin-tokens", status_code=status.HTTP_201_CREATED)
async def create_admin_token(org_id: AdminOrg, body: AdminTokenCreate,
                             container: ContainerDep) -> AdminTokenCreatedRead:
    """Issue another admin token (its value is in this answer only)."""
    made = await orgs.new_admin_token(db=container.db, clock=container.clock, org_id=org_id,
                                      name=body.name)
    return AdminTokenCreatedRead(id=made.id, name=made.name, admin_token=made.token)


@router.delete("/{org_id}/admin-tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT,
               response_class=Response,
               responses={404: error("No such token in this org."),
                          409: error("The org's last active admin token.")})
async def revoke_admin_token(org_id: AdminOrg, token_id: str,
                             container: ContainerDep) -> Response:
    """Revoke an admin token at once. The last active one cannot be revoked over REST."""
    await orgs.revoke_admin_token(db=container.db, clock=container.clock, org_id=org_id,
                                  token_id=token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
