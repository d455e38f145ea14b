"""Dependencies of the routes: the services of the container the app was built with, as
``Annotated`` aliases (``PeopleDep``, ``SendsDep``, …), and the org of the admin token
(``AdminOrg``).

The aliases are async functions on purpose: a plain ``def`` dependency hops to the thread
pool on every request.
"""

from __future__ import annotations

from typing import Annotated

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

_bearer = HTTPBearer(auto_error=False, description="An admin token from `clarion orgs create`.")


def container_of(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


async def _settings(request: Request) -> Settings:
    return container_of(request).settings


async def _orgs(request: Request) -> Orgs:
    return container_of(request).orgs


async def _apps(request: Request) -> Apps:
    return container_of(request).apps


async def _people(request: Request) -> People:
    return container_of(request).people


async def _devices(request: Request) -> Devices:
    return container_of(request).devices


async def _registration(request: Request) -> Registration:
    return container_of(request).registration


async def _sends(request: Request) -> Sends:
    return container_of(request).sends


async def _interactions(request: Request) -> Interactions:
    return container_of(request).interactions


async def _reports(request: Request) -> Reports:
    return container_of(request).reports


async def _health(request: Request) -> Health:
    return container_of(request).health


SettingsDep = Annotated[Settings, Depends(_settings)]
OrgsDep = Annotated[Orgs, Depends(_orgs)]
AppsDep = Annotated[Apps, Depends(_apps)]
PeopleDep = Annotated[People, Depends(_people)]
DevicesDep = Annotated[Devices, Depends(_devices)]
RegistrationDep = Annotated[Registration, Depends(_registration)]
SendsDep = Annotated[Sends, Depends(_sends)]
InteractionsDep = Annotated[Interactions, Depends(_interactions)]
ReportsDep = Annotated[Reports, Depends(_reports)]
HealthDep = Annotated[Health, Depends(_health)]


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
