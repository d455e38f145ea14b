"""Dependency aliases shared by the routes (``ContainerDep``, ``AdminOrg``, ``TokenOrg``).

Admin-token routes are authenticated by ``clarion.api.intake`` *before* the body is read (a
client without a token gets its 401 without sending its body); the dependencies here take that
answer from the request scope, and check the token themselves only for a route that did not go
through the intake.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from clarion.bootstrap import Container
from clarion.errors import NotFound, Unauthorized
from clarion.services import orgs

# Documents the scheme in OpenAPI; the token itself is read by ``authenticate``.
_bearer = HTTPBearer(auto_error=False, description="An admin token from `clarion orgs create`.")
AUTHENTICATED_ORG = "clarion.admin_org"  # request scope key: the org of the checked token


async def get_container(request: Request) -> Container:
    # async: a plain def would hop to the thread pool on every request (hot paths feel it)
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def authenticate(request: Request, container: Container, org_id: str | None) -> str:
    """The org of the request's admin bearer token; with ``org_id`` (the path's), that org or
    NotFound — a token of another org gets 404, as if the org did not exist: no org can even
    learn that another one exists. Remembered in the request scope (one check per request)."""
    known: str | None = request.scope.get(AUTHENTICATED_ORG)
    if known is None:
        scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("this endpoint needs an admin token",
                               fix="Send `Authorization: Bearer <admin token>` (from "
                               "`clarion orgs create`).")
        known = await orgs.authenticate_admin(db=container.db, token=token)
        request.scope[AUTHENTICATED_ORG] = known
    if org_id is not None and known != org_id:
        raise NotFound(f"organization {org_id} does not exist or is not yours",
                       fix="Use the org id your admin token was issued for.")
    return known


async def admin_org(
    org_id: str,
    request: Request,
    container: ContainerDep,
    _creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The path's ``org_id``, after checking the bearer token is an admin token of that org."""
    return await authenticate(request, container, org_id)


async def token_org(
    request: Request,
    container: ContainerDep,
    _creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The org of the admin bearer token (OData: Dataverse reads the org from the host name,
    so the path carries none)."""
    return await authenticate(request, container, None)


AdminOrg = Annotated[str, Depends(admin_org)]
TokenOrg = Annotated[str, Depends(token_org)]
