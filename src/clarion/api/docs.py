"""The API reference pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), that work offline.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they are blank on a machine
without internet. This is FastAPI's documented recipe ("Self-hosting JavaScript and CSS for
docs"): the same page generators, pointed at assets served by Clarion itself under
``/docs-assets``. The assets are those the ``fastapi-offline`` package ships (Swagger UI 5,
which renders the OpenAPI 3.1 document FastAPI generates, and ReDoc); Clarion writes none of
them. Nothing on the pages names another host: no web fonts, no favicon from elsewhere, no
online validator.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
_FILES = Path(str(files("fastapi_offline") / "static"))


def install(app: FastAPI, *, openapi_url: str = "/openapi.json") -> None:
    """Serve the assets and the two pages; the app must be created with ``docs_url=None``
    and ``redoc_url=None`` (FastAPI's CDN pages)."""
    app.mount(ASSETS, StaticFiles(directory=_FILES), name="docs-assets")
    oauth2_redirect = "/docs/oauth2-redirect"

    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} API",
            oauth2_redirect_url=oauth2_redirect,
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            # No badge fetched from validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None})

    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=f"{app.title} API",
                              redoc_js_url=f"{ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{ASSETS}/favicon.png",
                              with_google_fonts=False)

    app.add_api_route("/docs", swagger_ui, include_in_schema=False)
    app.add_api_route(oauth2_redirect, swagger_ui_redirect, include_in_schema=False)
    app.add_api_route("/redoc", redoc, include_in_schema=False)
