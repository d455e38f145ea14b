"""Wire schemas of ``/v1/orgs/{org_id}`` and its admin tokens. Reads are the domain's own
models (``Org``, ``AdminToken``): one definition per resource."""

from __future__ import annotations

from pydantic import BaseModel, Field

from clarion.domain.orgs import AdminToken
from clarion.domain.orgs import Org as OrgRead

__all__ = ["AdminTokenCreate", "AdminTokenCreatedRead", "AdminTokenList", "OrgRead"]


class AdminTokenList(BaseModel):
    items: list[AdminToken]


class AdminTokenCreate(BaseModel):
    name: str = Field("admin", min_length=1, max_length=200,
                      description="Who or what uses it (shown when listing).")


class AdminTokenCreatedRead(BaseModel):
    id: str
    name: str
    admin_token: str = Field(description="The token itself: shown once, only its hash is kept.")
