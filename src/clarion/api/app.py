"""The FastAPI application factory: native ``/v1`` API and CIJ-compatible routes side by side."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from clarion import __version__
from clarion.api import docs, errors, fast, openapi
from clarion.api.responses import JSON
from clarion.api.routes import (
    apps,
    cij_interactions,
    cij_odata,
    cij_registration,
    compliance,
    devices,
    health,
    journeys,
    links,
    messages,
    orgs,
    people,
    reports,
    segments,
    sends,
    triggers,
    unsubscribe,
)
from clarion.bootstrap import Container

DESCRIPTION = """Self-hostable push notifications.

* `/v1/...` — Clarion's native API. Authenticate with `Authorization: Bearer <admin token>`
  (from `clarion orgs create`).
* `/api/v1.0/orgs/{orgId}/pushdeviceregistration/...` — device registration, compatible with
  Dynamics 365 Customer Insights – Journeys (the body carries `ApiToken` and `MobileAppId`).
* `/api/data/v9.0/contacts|leads` — the OData subset CIJ backends use to map users.

Errors are `{"error": {"code", "message", "fix"?, "field"?}}`. Bodies are bounded (413 beyond the
limit the message states); admin tokens are checked before a body is read.
"""


class ClarionAPI(FastAPI):
    """FastAPI, except that the two hottest endpoint families — interaction reports and
    device registrations — are answered before FastAPI's middleware stack and routing
    (``clarion.api.fast``)."""

    # The container the fast paths use (``create_app`` sets it with ``state.container``):
    # a plain attribute, because ``State.__getattr__`` costs about as much as matching a path.
    fast_container: Container | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        container = self.fast_container
        if container is not None and await fast.answer(FAST_ROUTES, container, scope, receive,
                                                       send):
            return
        await super().__call__(scope, receive, send)


FAST_ROUTES = (cij_interactions.REPORTS, cij_registration.REGISTRATION)


def create_app(container: Container) -> FastAPI:
    app = ClarionAPI(
        title="Clarion", version=__version__, description=DESCRIPTION,
        default_response_class=JSON,
        docs_url=None, redoc_url=None,  # FastAPI's pages load from a CDN: ours are local
    )
    docs.install(app)
    app.state.container = container
    app.fast_container = container
    errors.install(app)
    for module in (health, orgs, apps, people, devices, sends, cij_registration, cij_odata,
                   cij_interactions, links, reports, messages, compliance,
                   unsubscribe, segments, triggers, journeys):
        app.include_router(module.router)

    def openapi_schema() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi.document(app, cij_registration.openapi_components())
        return app.openapi_schema

    app.openapi = openapi_schema  # type: ignore[method-assign]
    return app
