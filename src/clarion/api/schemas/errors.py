"""The error body every route answers, and the error responses each family of routes declares.

One shape (``clarion.api.errors`` writes it): ``{"error": {"code", "message", "fix"?,
"field"?, "problems"?}}``. Routers pass one of the ``*_ERRORS`` maps as ``responses=`` so that
the OpenAPI document lists the statuses a route really answers, with this schema; the app
factory (``clarion.api.openapi``) replaces FastAPI's own 422 declaration, whose shape Clarion
never sends.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable and machine-readable, e.g. invalid_input.")
    message: str = Field(description="What went wrong.")
    fix: str | None = Field(None, description="What to do about it.")
    field: str | None = Field(None, description="The input at fault, when there is one.")
    problems: list[str] | None = Field(
        None, description="422 only: every problem found in the request.")


class ErrorBody(BaseModel):
    error: ErrorDetail


def error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.",
                                "schema": {"type": "integer"}}}
UNAVAILABLE = {**error("The database is unavailable (locked, read-only, unreachable), or the "
                       "backlog of accepted requests is at CLARION_MAX_BACKLOG (code "
                       "overloaded): nothing was stored; retry after Retry-After seconds."),
               "headers": RETRY_AFTER}
TOO_LARGE = error("The body is larger than the limit the message states "
                  "(CLARION_MAX_BODY_BYTES, CLARION_ADMIN_MAX_BODY_BYTES, "
                  "CLARION_EVENTS_MAX_BODY_BYTES).")

ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    400: error("A value is wrong (`field` names it), the body is not JSON, or a text holds a "
               "character Clarion cannot store (NUL, a lone surrogate). Nothing changed."),
    401: error("No admin token, or an unknown or revoked one."),
    404: error("No such thing in your organization (or the path's org is not your token's)."),
    413: TOO_LARGE,
    422: error("The JSON does not fit the schema; `problems` lists every problem."),
    503: UNAVAILABLE,
}

ODATA_ERRORS: dict[int | str, dict[str, Any]] = {
    400: error("The query is outside Clarion's OData subset (code 0x80060888), or a "
               "parameter holds NUL."),
    401: ADMIN_ERRORS[401],
    413: TOO_LARGE,
    503: UNAVAILABLE,
}

CIJ_ERRORS: dict[int | str, dict[str, Any]] = {
    400: error("Malformed request, or ApiToken not valid for MobileAppId (code "
               "ApiTokenNotValid). Nothing is stored."),
    413: TOO_LARGE,
    503: UNAVAILABLE,
}
