"""Organizations (creating one is an operator's act, `clarion orgs create`) and their admin
tokens: list, issue, revoke."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from clarion.api.deps import AdminOrg, OrgsDep
from clarion.api.intake import CheckedRoute
from clarion.api.schemas.errors import ADMIN_ERRORS, error
from clarion.api.schemas.orgs import (
    AdminTokenCreate,
    AdminTokenCreatedRead,
    AdminTokenList,
    OrgRead,
)

router = APIRouter(prefix="/v1/orgs", tags=["orgs"],
                   route_class=CheckedRoute, responses=ADMIN_ERRORS)


@router.get("/{org_id}")
async def get_org(org_id: AdminOrg, orgs: OrgsDep) -> OrgRead:
    return await orgs.get(org_id)


@router.get("/{org_id}/admin-tokens")
async def list_admin_tokens(org_id: AdminOrg, orgs: OrgsDep) -> AdminTokenList:
    """The org's admin tokens (never their values)."""
    return AdminTokenList(items=await orgs.admin_tokens(org_id))


@router.post("/{org_id}/admin-tokens", status_code=status.HTTP_201_CREATED)
async def create_admin_token(org_id: AdminOrg, body: AdminTokenCreate,
                             orgs: OrgsDep) -> AdminTokenCreatedRead:
    """Issue another admin token (its value is in this answer only)."""
    made = await orgs.new_admin_token(org_id, body.name)
    return AdminTokenCreatedRead(id=made.id, name=made.name, admin_token=made.token)


@router.delete("/{org_id}/admin-tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT,
               response_class=Response,
               responses={404: error("No such token in this org."),
                          409: error("The org's last active admin token.")})
async def revoke_admin_token(org_id: AdminOrg, token_id: str, orgs: OrgsDep) -> Response:
    """Revoke an admin token at once. The last active one cannot be revoked over REST."""
    await orgs.revoke_admin_token(org_id, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
