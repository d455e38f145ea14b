"""Organizations (read-only over REST: creating one is an operator's act, `clarion orgs create`)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from clarion.api.deps import AdminOrg, ContainerDep
from clarion.services import orgs

router = APIRouter(prefix="/v1/orgs", tags=["orgs"])


class OrgRead(BaseModel):
    id: str
    name: str


@router.get("/{org_id}")
async def get_org(org_id: AdminOrg, container: ContainerDep) -> OrgRead:
    org = await orgs.get_org(db=container.db, org_id=org_id)
    return OrgRead(id=org.id, name=org.name)
