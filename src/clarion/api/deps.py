"""Dependency aliases shared by the routes (``ContainerDep``, ``AdminOrg``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from clarion.bootstrap import Container
from clarion.errors import NotFound, Unauthorized
from clarion.services import orgs

_bearer = HTTPBearer(auto_error=False, description="An admin token from `clarion orgs create`.")


async def get_container(request: Request) -> Container:
    # async: a plain def would hop to the thread pool on every request (hot paths feel it)
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def admin_org(
    org_id: str,
    container: ContainerDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The path's ``org_id``, after checking the bearer token is an admin token of that org.

    A token of another org gets 404, as if the org did not exist: no org can even learn that
    another one exists."""
    if creds is None or not creds.credentials:
        raise Unauthorized("this endpoint needs an admin token",
                           fix="Send `Authorization: Bearer <admin token>` (from "
                           "`clarion orgs create`).")
    token_org = await orgs.authenticate_admin(db=container.db, token=creds.credentials)
    if token_org != org_id:
        raise NotFound(f"organization {org_id} does not exist or is not yours",
                       fix="Use the org id your admin token was issued for.")
    return org_id


AdminOrg = Annotated[str, Depends(admin_org)]
