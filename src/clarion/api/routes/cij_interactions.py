"""CIJ-compatible interaction API (no credentials, as in CIJ):

* ``POST /api/v1.0/orgs/{orgId}/pushdatareceiver/events``
  ``{"TrackingId", "DeviceToken", "PushNotificationStatus"}`` → 202 / 400 (Clarion also takes a
  JSON array of up to 100 such reports, all or nothing)
* legacy ``POST /api/v1.0/orgs/{orgId}/pushchannel/event/trackings/{TrackingId}``
  ``{"DeviceToken", "PushNotificationStatus"}`` → 202 / 400

Accepted values and Clarion's extensions are in ``clarion.domain.interactions``; the request
shapes in ``clarion.domain.cij_shapes``. Guards of a credential-less endpoint: a report is
recorded only when its TrackingId was sent to that very DeviceToken by the organization of the
path (else 400 ``UnknownTrackingId``); bodies over ``CLARION_EVENTS_MAX_BODY_BYTES`` get 413;
each client IP gets ``CLARION_EVENTS_RATE_PER_CLIENT`` reports per second (then 429 with
``Retry-After``).

This is the hottest endpoint (every device reports every notification, ≥ 10,000 reports/s on
one core): one ``FastRoute`` of ``clarion.api.fast``, answered before FastAPI.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Request, Response

from clarion.api import body as bodies
from clarion.api.fast import JSON_CONTENT, Answer, FastRequest, FastRoute, answer_request
from clarion.api.intake import EventsRoute
from clarion.api.schemas.errors import RETRY_AFTER, UNAVAILABLE, error
from clarion.domain import cij_shapes as shapes
from clarion.domain import text
from clarion.domain.interactions import Source, parse_events, parse_legacy_event

if TYPE_CHECKING:
    from clarion.bootstrap import Container

_PREFIX = "/api/v1.0/orgs/"
_EVENTS = "pushdatareceiver/events"
_LEGACY = "pushchannel/event/trackings/"
_ACCEPTED: Answer = (202, [(b"content-length", b"0")], b"")


def match(path: str) -> tuple[str, ...] | None:
    """(org id segment, legacy tracking id or "") when ``path`` is one of the two endpoints."""
    if not path.startswith(_PREFIX):
        return None
    rest = path[len(_PREFIX):]
    org, sep, tail = rest.partition("/")
    if not sep or not org:
        return None
    if tail == _EVENTS:
        return org, ""
    if tail.startswith(_LEGACY):
        tracking = tail[len(_LEGACY):]
        if tracking and "/" not in tracking:
            return org, tracking
    return None


def _too_many(client: str, wait: float) -> Answer:
    content = orjson.dumps({"error": {
        "code": "rate_limited", "message": f"too many interaction reports from {client}",
        "fix": "Slow down and retry after the number of seconds in Retry-After; operators can "
               "raise CLARION_EVENTS_RATE_PER_CLIENT (0 disables the limit)."}})
    return 429, [JSON_CONTENT, (b"retry-after", str(max(1, math.ceil(wait))).encode())], content


async def _handle(container: Container, request: FastRequest) -> Answer:
    """Answer one report (or a batch): 202 once committed, 429 over the client's rate."""
    interactions = container.interactions
    limiter = interactions.limiter
    if limiter is not None:
        wait = limiter.check(request.client, time.monotonic())
        if wait > 0:
            return _too_many(request.client, wait)
    doc = text.loads(request.body)
    now = interactions.now()
    tracking_id = request.params[0]
    if tracking_id:
        reports = [parse_legacy_event(doc, tracking_id=tracking_id, now=now)]
        source = Source.CIJ_LEGACY
    else:
        reports = parse_events(doc, now=now)
        source = Source.CIJ_EVENTS
    if len(reports) > 1 and limiter is not None:  # the first report was counted above
        wait = limiter.check(request.client, time.monotonic(), len(reports) - 1)
        if wait > 0:
            return _too_many(request.client, wait)
    await interactions.ingest_many(org_id=request.org_id, reports=reports, source=source)
    return _ACCEPTED


REPORTS = FastRoute(match, bodies.EVENTS, _handle)

# ------------------------------------------------------------------- documented routes

router = APIRouter(tags=["CIJ interactions"], route_class=EventsRoute)


def _ref(shape: shapes.Shape) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{shape.name}"}


def _doc(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": schema}}}}


_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "Accepted (no body): committed, recorded in reports within about a "
                         "second (later under a burst; nothing accepted is lost)."},
    400: error("Malformed report, or a TrackingId that was not sent to this DeviceToken in "
               "this organization (code UnknownTrackingId)."),
    413: error("Body larger than CLARION_EVENTS_MAX_BODY_BYTES."),
    429: {**error("Too many reports from this client; see Retry-After."),
          "headers": RETRY_AFTER},
    503: UNAVAILABLE,
}


@router.post("/api/v1.0/orgs/{org_id}/pushdatareceiver/events", status_code=202,
             response_class=Response, openapi_extra=_doc({"oneOf": [
                 _ref(shapes.INTERACTION_REPORT), {
                     "type": "array", "items": _ref(shapes.INTERACTION_REPORT), "minItems": 1,
                     "maxItems": 100,
                     "description": "Clarion extension: up to 100 reports, all or nothing."}]}),
             responses=_RESPONSES)
async def report_interaction(org_id: str, request: Request) -> Response:
    """Report that a notification was opened (or clicked, delivered, dismissed), or the
    person's consent choice for the app (OptedIn, OptedOut)."""
    return await answer_request(REPORTS, request)


@router.post("/api/v1.0/orgs/{org_id}/pushchannel/event/trackings/{tracking_id}",
             status_code=202, response_class=Response,
             openapi_extra=_doc(_ref(shapes.LEGACY_INTERACTION_REPORT)), responses=_RESPONSES)
async def report_interaction_legacy(org_id: str, tracking_id: str, request: Request) -> Response:
    """Legacy API v1: PushNotificationStatus 0 = Clicked, 1 = Opened."""
    return await answer_request(REPORTS, request)
