"""Dependencies of the routes: the services of the container the app was built with, as
``Annotated`` aliases (``PeopleDep``, ``SendsDep``, …), and the org of the admin token
(``AdminOrg``, ``TokenOrg``).

The aliases are async functions on purpose: a plain ``def`` dependency hops to the thread
pool on every request.

Admin-token routes are authenticated by ``clarion.api.intake`` *before* the body is read (a
client without a token gets its 401 without sending its body); the dependencies here take that
answer from the request scope, and check the token themselves only for a route that did not go
through the intake.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from clarion.bootstrap import Container
from clarion.config import Settings
from clarion.errors import NotFound, Unauthorized
from clarion.services.apps import Apps
from clarion.services.compliance import Compliance
from clarion.services.devices import Devices
from clarion.services.health import Health
from clarion.services.interactions import Interactions
from clarion.services.journeys import Journeys
from clarion.services.messages import Messages
from clarion.services.orgs import Orgs
from clarion.services.people import People
from clarion.services.registration import Registration
from clarion.services.reports import Reports
from clarion.services.segments import Segments
from clarion.services.sending import Sends
from clarion.services.triggers import Triggers

T = TypeVar("T")
# Documents the scheme in OpenAPI; the token itself is read by ``authenticate``.
_bearer = HTTPBearer(auto_error=False, description="An admin token from `clarion orgs create`.")
AUTHENTICATED_ORG = "clarion.admin_org"  # request scope key: the org of the checked token


def container_of(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def _part(get: Callable[[Container], T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency answering one part of the app's container."""

    async def dependency(request: Request) -> T:
        return get(container_of(request))

    return dependency


SettingsDep = Annotated[Settings, Depends(_part(lambda c: c.settings))]
OrgsDep = Annotated[Orgs, Depends(_part(lambda c: c.orgs))]
AppsDep = Annotated[Apps, Depends(_part(lambda c: c.apps))]
PeopleDep = Annotated[People, Depends(_part(lambda c: c.people))]
DevicesDep = Annotated[Devices, Depends(_part(lambda c: c.devices))]
RegistrationDep = Annotated[Registration, Depends(_part(lambda c: c.registration))]
SendsDep = Annotated[Sends, Depends(_part(lambda c: c.sends))]
InteractionsDep = Annotated[Interactions, Depends(_part(lambda c: c.interactions))]
ReportsDep = Annotated[Reports, Depends(_part(lambda c: c.reports))]
HealthDep = Annotated[Health, Depends(_part(lambda c: c.health))]
MessagesDep = Annotated[Messages, Depends(_part(lambda c: c.messages))]
ComplianceDep = Annotated[Compliance, Depends(_part(lambda c: c.compliance))]
SegmentsDep = Annotated[Segments, Depends(_part(lambda c: c.segments))]
TriggersDep = Annotated[Triggers, Depends(_part(lambda c: c.triggers))]
JourneysDep = Annotated[Journeys, Depends(_part(lambda c: c.journeys))]


async def authenticate(request: Request, orgs: Orgs, org_id: str | None) -> str:
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
        known = await orgs.authenticate_admin(token)
        request.scope[AUTHENTICATED_ORG] = known
    if org_id is not None and known != org_id:
        raise NotFound(f"organization {org_id} does not exist or is not yours",
                       fix="Use the org id your admin token was issued for.")
    return known


async def admin_org(
    org_id: str,
    request: Request,
    orgs: OrgsDep,
    _creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The path's ``org_id``, after checking the bearer token is an admin token of that org."""
    return await authenticate(request, orgs, org_id)


async def token_org(
    request: Request,
    orgs: OrgsDep,
    _creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The org of the admin bearer token (OData: Dataverse reads the org from the host name,
    so the path carries none)."""
    return await authenticate(request, orgs, None)


AdminOrg = Annotated[str, Depends(admin_org)]
TokenOrg = Annotated[str, Depends(token_org)]
