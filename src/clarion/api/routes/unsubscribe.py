"""Unsubscribe links: ``GET /u/<token>`` asks, ``POST /u/<token>`` records the opt-out.

The token (``clarion.domain.unsubscribe``) names an app and a person, signed. GET only shows a
page with a button: link scanners follow links with GET, and must not unsubscribe anyone
(the same reason RFC 8058 makes one-click unsubscribe a POST). A forged or stale token gets a
404 page.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse

from clarion.api.deps import ComplianceDep
from clarion.api.intake import CheckedRoute
from clarion.api.schemas.errors import ErrorBody
from clarion.errors import NotFound

router = APIRouter(tags=["compliance"], route_class=CheckedRoute)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 36em; margin: 4em auto;">
<h1>{title}</h1>
{body}
</body></html>
"""
_HEADERS = {"cache-control": "no-store", "referrer-policy": "no-referrer"}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "An HTML page."},
    400: {"model": ErrorBody, "description": "The token holds text no link can hold (JSON)."},
    404: {"content": {"text/html": {}}, "description": "Not a valid unsubscribe link."},
}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=html.escape(title), body=body),
                        status_code=status, headers=_HEADERS)


_INVALID = ("This link is not valid",
            "<p>Open it again from the notification, or change your choice in the app.</p>")


@router.get("/u/{token}", response_class=Response, responses=_RESPONSES)
async def ask(token: str, compliance: ComplianceDep) -> HTMLResponse:
    """The confirmation page of an unsubscribe link (records nothing)."""
    try:
        found = await compliance.unsubscribe(token, confirm=False)
    except NotFound:
        return _page(*_INVALID, status=404)
    name = html.escape(found.app_name)
    return _page(f"Stop promotional notifications from {found.app_name}?",
                 f'<form method="post"><button type="submit">Yes, stop them</button></form>'
                 f"<p>You will still get notifications {name} must send you (about your "
                 "account or orders, for example).</p>")


@router.post("/u/{token}", response_class=Response, responses=_RESPONSES)
async def confirm(token: str, compliance: ComplianceDep) -> HTMLResponse:
    """Record the opt-out of the person the link names, for its app."""
    try:
        found = await compliance.unsubscribe(token, confirm=True)
    except NotFound:
        return _page(*_INVALID, status=404)
    return _page("You are unsubscribed",
                 f"<p>{html.escape(found.app_name)} will not send you promotional "
                 "notifications any more. You can change this in the app.</p>")
