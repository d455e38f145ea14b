"""Dependencies of the routes: the services of the container the app was built with, as
``Annotated`` aliases (``PeopleDep``, ``SendsDep``, …), and the org of the admin token
(``AdminOrg``).

The aliases are async functions on purpose: a plain ``def`` dependency hops to the thread
pool on every request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from clarion.bootstrap import Container
from clarion.config import Settings
from clarion.errors import NotFound, Unauthorized
from clarion.services.apps import Apps
from clarion.services.devices import Devices
from clarion.services.health import Health
from clarion.services.interactions import Interactions
from clarion.services.orgs import Orgs
from clarion.services.people import People
from clarion.services.registration import Registration
from clarion.services.reports import Reports
from clarion.services.sending import Sends

T = TypeVar("T")
_bearer = HTTPBearer(auto_error=False, description="An admin token from `clarion orgs create`.")


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


def _no_token() -> Unauthorized:
    return Unauthorized("this endpoint needs an admin token",
                        fix="Send `Authorization: Bearer <admin token>` (from "
                        "`clarion orgs create`).")


async def token_org(
    orgs: OrgsDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The org of the admin bearer token."""
    if creds is None or not creds.credentials:
        raise _no_token()
    return await orgs.authenticate_admin(creds.credentials)


TokenOrg = Annotated[str, Depends(token_org)]


async def admin_org(org_id: str, token_org: TokenOrg) -> str:
    """The path's ``org_id``, after checking the bearer token is an admin token of that org.

    A token of another org gets 404, as if the org did not exist: no org can even learn that
    another one exists."""
    if token_org != org_id:
        raise NotFound(f"organization {org_id} does not exist or is not yours",
                       fix="Use the org id your admin token was issued for.")
    return org_id


AdminOrg = Annotated[str, Depends(admin_org)]
