"""Routes: app configurations, their API tokens and developer information.

Thin: parse, call one method of the ``Apps`` service, serialise. Every route needs an
admin token of the org in the path (``AdminOrg``); an app of another org answers 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from clarion.api.deps import AdminOrg, AppsDep
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

router = APIRouter(prefix="/v1/orgs/{org_id}/apps", tags=["apps"],
                   route_class=CheckedRoute, responses=ADMIN_ERRORS)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_app(org_id: AdminOrg, body: AppCreate, apps: AppsDep) -> AppCreatedRead:
    """Create an app configuration (iOS, Android and/or Web). The answer holds the app's first
    API token, shown once. Secrets are write-only: no answer ever contains them."""
    created = await apps.create(org_id, body.document())
    return AppCreatedRead(id=created.app.id, app=AppRead.of(created.app),
                          api_token=created.api_token)


@router.get("")
async def list_apps(org_id: AdminOrg, apps: AppsDep) -> list[AppRead]:
    return [AppRead.of(a) for a in await apps.of_org(org_id)]


@router.get("/{app_id}")
async def get_app(org_id: AdminOrg, app_id: str, apps: AppsDep) -> AppRead:
    return AppRead.of(await apps.get(org_id, app_id))


@router.patch("/{app_id}")
async def update_app(
    org_id: AdminOrg, app_id: str, body: AppUpdate, apps: AppsDep
) -> AppRead:
    """Partial update: a platform object is merged over the stored one (secrets you leave out
    are kept), `null` removes a platform, settings are merged."""
    return AppRead.of(await apps.update(org_id, app_id, body.document()))


@router.delete("/{app_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_app(org_id: AdminOrg, app_id: str, apps: AppsDep) -> Response:
    """Delete the app with its API tokens and devices."""
    await apps.delete(org_id, app_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{app_id}/tokens", status_code=status.HTTP_201_CREATED)
async def create_token(
    org_id: AdminOrg, app_id: str, apps: AppsDep, body: ApiTokenCreate | None = None
) -> ApiTokenCreatedRead:
    """A new API token for the app (the value is shown once)."""
    created = await apps.create_token(org_id, app_id,
                                      body.name if body is not None else "default")
    return ApiTokenCreatedRead.created(created)


@router.get("/{app_id}/tokens")
async def list_tokens(org_id: AdminOrg, app_id: str, apps: AppsDep) -> list[ApiTokenRead]:
    return [ApiTokenRead.of(tok) for tok in await apps.tokens_of(org_id, app_id)]


@router.delete("/{app_id}/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT,
               response_class=Response)
async def revoke_token(
    org_id: AdminOrg, app_id: str, token_id: str, apps: AppsDep
) -> Response:
    """Revoke a token: refused at once by this process, by every process within
    CLARION_API_TOKEN_CACHE_SECONDS."""
    await apps.revoke_token(org_id, app_id, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{app_id}/developer-info")
async def developer_info(
    org_id: AdminOrg, app_id: str, apps: AppsDep
) -> DeveloperInfoRead:
    """CIJ's "Developer information" tab: public URL, org id, app id and the exact endpoints."""
    return DeveloperInfoRead.of(await apps.developer_info(org_id, app_id))
