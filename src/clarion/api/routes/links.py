"""Tracked links: ``GET /l/<token>`` records *Link clicked* and redirects (302) to the
message's original link.

The token (``clarion.domain.links``) names a delivery and is signed; it carries no URL, so the
redirect target is always the link stored with the send — never something taken from the
request, hence never an open redirect. A forged, tampered or unknown token, or one whose send
was deleted, gets a 404 HTML page and no ``Location``.

``HEAD`` answers the same status and ``Location`` but records nothing: link scanners (mail
security gateways, chat previews) probe with HEAD, people do not.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse

from clarion.api.deps import InteractionsDep
from clarion.api.schemas.errors import ErrorBody
from clarion.errors import NotFound
from clarion.services.interactions import Interactions

router = APIRouter(tags=["tracked links"])

_NOT_VALID = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Link not valid</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 36em; margin: 4em auto;">
<h1>This link is not valid</h1>
<p>It may have been changed or shortened when it was copied, or the message it came from no
longer exists.</p>
<p>Open the notification again, or go to the app or website directly.</p>
</body></html>
"""

# No caching (each click is counted; a cached redirect would skip the count) and no referrer
# (the tracked URL names a delivery: it should not leak to the target site).
_HEADERS = {"cache-control": "no-store", "referrer-policy": "no-referrer"}


_RESPONSES: dict[int | str, dict[str, Any]] = {
    302: {"description": "Redirect to the message's original link."},
    # A path with a line break matches no route: the application's JSON 404 answers it.
    404: {"description": "Not a valid tracked link (HTML page; JSON for a path holding a "
                         "line break).",
          "model": ErrorBody, "content": {"text/html": {}}},
}


async def _follow(token: str, interactions: Interactions, *, record: bool) -> Response:
    try:
        target = await interactions.click(token=token, record=record)
    except NotFound:
        return HTMLResponse(_NOT_VALID, status_code=404, headers=_HEADERS)
    return Response(status_code=302, headers={**_HEADERS, "location": target})


@router.get("/l/{token:path}", status_code=302, response_class=Response, responses=_RESPONSES)
async def follow_link(token: str, interactions: InteractionsDep) -> Response:
    """Follow a tracked link from a notification: records the click, then redirects."""
    return await _follow(token, interactions, record=True)


@router.head("/l/{token:path}", include_in_schema=False)
async def probe_link(token: str, interactions: InteractionsDep) -> Response:
    """The same answer without recording a click (scanners and previews use HEAD)."""
    return await _follow(token, interactions, record=False)
