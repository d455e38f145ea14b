"""The FastAPI application factory: native ``/v1`` API and CIJ-compatible routes side by side."""

from __future__ import annotations

from fastapi import FastAPI

from clarion import __version__
from clarion.api import errors
from clarion.api.responses import JSON
from clarion.api.routes import apps, cij_odata, cij_registration, devices, health, orgs, people
from clarion.bootstrap import Container


def create_app(container: Container) -> FastAPI:
    app = FastAPI(
        title="Clarion",
        version=__version__,
        description="Self-hostable push notifications. Native API under `/v1`; the "
        "Dynamics 365 Customer Insights – Journeys compatible API under `/api`.",
        default_response_class=JSON,
    )
    app.state.container = container
    errors.install(app)
    for module in (health, orgs, apps, people, devices, cij_registration, cij_odata):
        app.include_router(module.router)
    return app
