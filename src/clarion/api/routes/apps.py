"""Routes: app configurations, their API tokens and developer information.

Thin: parse, call one service in ``clarion.services.apps``, serialise. Every route needs an
admin token of the org in the path (``AdminOrg``); an app of another org answers 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from clarion.api.deps import AdminOrg, ContainerDep
from clarion.api.intake import CheckedRoute
from clarion.api.schemas.apps import (
    ApiTokenCreate,
    ApiTokenCreatedRead,
    ApiTokenRead,
    AppCreate,
    AppCreatedRead,
    AppRead,
    AppUpdate,
    DeveloperInfoRead,
)
from clarion.api.schemas.errors import ADMIN_ERRORS
from clarion.services import apps

router = APIRouter(prefix="/v1/orgs/{org_id}/apps", tags=["apps"],
                   route_class=CheckedRoute, responses=ADMIN_ERRORS)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_app(org_id: AdminOrg, body: AppCreate, container: ContainerDep) -> AppCreatedRead:
    """Create an app configuration (iOS, Android and/or Web). The answer holds the app's first
    API token, shown once. Secrets are write-only: no answer ever contains them."""
    created = await apps.create_app(db=container.db, box=container.box, clock=container.clock,
                                    org_id=org_id, document=body.document(),
                                    fcm_url=container.settings.fcm_url)
    return AppCreatedRead(id=created.app.id, app=AppRead.of(created.app),
                          api_token=created.api_token)


@router.get("")
async def list_apps(org_id: AdminOrg, container: ContainerDep) -> list[AppRead]:
    return [AppRead.of(a) for a in await apps.list_apps(db=container.db, org_id=org_id)]


@router.get("/{app_id}")
async def get_app(org_id: AdminOrg, app_id: str, container: ContainerDep) -> AppRead:
    return AppRead.of(await apps.get_app(db=container.db, org_id=org_id, app_id=app_id))


@router.patch("/{app_id}")
async def update_app(
    org_id: AdminOrg, app_id: str, body: AppUpdate, container: ContainerDep
) -> AppRead:
    """Partial update: a platform object is merged over the stored one (secrets you leave out
    are kept), `null` removes a platform, settings are merged."""
    app = await apps.update_app(db=container.db, box=container.box, clock=container.clock,
                                org_id=org_id, app_id=app_id, document=body.document(),
                                fcm_url=container.settings.fcm_url)
    return AppRead.of(app)


@router.delete("/{app_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_app(org_id: AdminOrg, app_id: str, container: ContainerDep) -> Response:
    """Delete the app with its API tokens and devices."""
    await apps.delete_app(db=container.db, org_id=org_id, app_id=app_id)
    container.api_tokens.invalidate()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{app_id}/tokens", status_code=status.HTTP_201_CREATED)
async def create_token(
    org_id: AdminOrg, app_id: str, container: ContainerDep, body: ApiTokenCreate | None = None
) -> ApiTokenCreatedRead:
    """A new API token for the app (the value is shown once)."""
    created = await apps.create_api_token(db=container.db, clock=container.clock, org_id=org_id,
                                          app_id=app_id,
                                          name=body.name if body is not None else "default")
    return ApiTokenCreatedRead.created(created)


@router.get("/{app_id}/tokens")
async def list_tokens(org_id: AdminOrg, app_id: str, container: ContainerDep) -> list[ApiTokenRead]:
    tokens = await apps.list_api_tokens(db=container.db, org_id=org_id, app_id=app_id)
    return [ApiTokenRead.of(tok) for tok in tokens]


@router.delete("/{app_id}/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT,
               response_class=Response)
async def revoke_token(
    org_id: AdminOrg, app_id: str, token_id: str, container: ContainerDep
) -> Response:
    """Revoke a token: refused at once by this process, by every process within
    CLARION_API_TOKEN_CACHE_SECONDS."""
    await apps.revoke_api_token(db=container.db, clock=container.clock, org_id=org_id,
                                app_id=app_id, token_id=token_id)
    container.api_tokens.invalidate()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{app_id}/developer-info")
async def developer_info(
    org_id: AdminOrg, app_id: str, container: ContainerDep
) -> DeveloperInfoRead:
    """CIJ's "Developer information" tab: public URL, org id, app id and the exact endpoints."""
    info = await apps.developer_info(db=container.db, settings=container.settings,
                                     org_id=org_id, app_id=app_id)
    return DeveloperInfoRead.of(info)
