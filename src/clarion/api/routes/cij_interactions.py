"""CIJ-compatible interaction API (no credentials, as in CIJ):

* ``POST /api/v1.0/orgs/{orgId}/pushdatareceiver/events``
  ``{"TrackingId", "DeviceToken", "PushNotificationStatus"}`` → 202 / 400 (Clarion also takes a
  JSON array of up to 100 such reports, all or nothing)
* legacy ``POST /api/v1.0/orgs/{orgId}/pushchannel/event/trackings/{TrackingId}``
  ``{"DeviceToken", "PushNotificationStatus"}`` → 202 / 400

Accepted values and Clarion's extensions are in ``clarion.domain.interactions``. Guards of a
credential-less endpoint: a report is recorded only when its TrackingId was sent to that very
DeviceToken by the organization of the path (else 400 ``UnknownTrackingId``); bodies over
``CLARION_EVENTS_MAX_BODY_BYTES`` get 413; each client IP gets
``CLARION_EVENTS_RATE_PER_CLIENT`` reports per second (then 429 with ``Retry-After``).

Why a raw ASGI fast path (``answer_fast``): this is the hottest endpoint (every device
reports every notification), with a target of ≥ 10,000 reports/s on one core. FastAPI's
routing, request object, dependency solving, middleware stack and per-request telemetry check
cost more than the rest of the request (measured: ~4.9k req/s for an empty FastAPI POST handler
against ~12.5k for raw ASGI on the same core). The application object hands these two paths
to ``answer_fast`` before FastAPI sees them; the FastAPI routes below document them in OpenAPI
and run the very same ``handle`` function when called directly (an app built without the fast
path, as one test does).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.requests import ClientDisconnect

from clarion.api import body as bodies
from clarion.api.deps import ContainerDep
from clarion.api.errors import error_answer
from clarion.api.intake import EventsRoute
from clarion.api.schemas.errors import RETRY_AFTER, UNAVAILABLE, error
from clarion.bootstrap import Container
from clarion.domain import text
from clarion.domain.interactions import Source, parse_events, parse_legacy_event
from clarion.errors import InvalidInput

log = logging.getLogger(__name__)

router = APIRouter(tags=["CIJ interactions"], route_class=EventsRoute)

_PREFIX = "/api/v1.0/orgs/"
_EVENTS = "pushdatareceiver/events"
_LEGACY = "pushchannel/event/trackings/"
_JSON_HEADERS = [(b"content-type", b"application/json")]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def _error(status: int, code: str, message: str, fix: str, **extra: Any) -> Answer:
    body = {"error": {"code": code, "message": message, "fix": fix, **extra}}
    return status, list(_JSON_HEADERS), orjson.dumps(body)


_ACCEPTED: Answer = (202, [(b"content-length", b"0")], b"")


async def handle(container: Container, *, org_id: str, tracking_id: str | None, body: bytes,
                 client: str) -> Answer:
    """Answer one report: (status, headers, body). ``tracking_id`` is set for the legacy path.

    Never raises: bad input answers 400; an unavailable database or a backlog at its cap 503
    with Retry-After (nothing recorded); anything else a JSON 500."""
    limiter = container.interactions.limiter
    if limiter is not None:
        wait = limiter.check(client, time.monotonic())
        if wait > 0:
            return _too_many(client, wait)
    try:
        org = _org(org_id)
        doc = text.loads(body)
        now = container.clock.now()
        if tracking_id is None:
            reports = parse_events(doc, now=now)
            source = Source.CIJ_EVENTS
        else:
            reports = [parse_legacy_event(doc, tracking_id=tracking_id, now=now)]
            source = Source.CIJ_LEGACY
        if len(reports) > 1 and limiter is not None:  # the first report was counted above
            wait = limiter.check(client, time.monotonic(), len(reports) - 1)
            if wait > 0:
                return _too_many(client, wait)
        await container.interactions.ingest_many(org_id=org, reports=reports, source=source)
    except InvalidInput as exc:
        return 400, list(_JSON_HEADERS), orjson.dumps({"error": exc.as_dict()})
    except Exception as exc:  # DatabaseUnavailable, Overloaded: 503 + Retry-After
        return error_answer(exc)
    return _ACCEPTED


def _too_many(client: str, wait: float) -> Answer:
    status, headers, content = _error(
        429, "rate_limited", f"too many interaction reports from {client}",
        "Slow down and retry after the number of seconds in Retry-After; operators can raise "
        "CLARION_EVENTS_RATE_PER_CLIENT (0 disables the limit).")
    return status, [*headers, (b"retry-after", str(max(1, math.ceil(wait))).encode())], content


_known_orgs: dict[str, str] = {}  # path segment -> canonical org id (validated once)


def _org(org_id: str) -> str:
    known = _known_orgs.get(org_id)
    if known is not None:
        return known
    try:
        canonical = str(uuid.UUID(org_id))
    except ValueError as exc:
        raise InvalidInput(f"{org_id!r} is not an organization id",
                           fix="Use the organization id from the app's developer information.",
                           field="orgId") from exc
    if len(_known_orgs) < 10_000:  # bounded: junk ids cannot grow it past that
        _known_orgs[org_id] = canonical
    return canonical


def match(path: str) -> tuple[str, str | None] | None:
    """(org id, legacy tracking id or None) when ``path`` is one of the two endpoints."""
    if not path.startswith(_PREFIX):
        return None
    rest = path[len(_PREFIX):]
    org, sep, tail = rest.partition("/")
    if not sep or not org:
        return None
    if tail == _EVENTS:
        return org, None
    if tail.startswith(_LEGACY):
        tracking = tail[len(_LEGACY):]
        if tracking and "/" not in tracking:
            return org, tracking
    return None


async def answer_fast(container: Container, scope: Scope, receive: Receive, send: Send) -> bool:
    """Answer ``scope`` if it is a report to one of the two endpoints; False otherwise.

    Called by the application object before anything else (``clarion.api.app``), so these
    requests skip FastAPI's routing, middleware stack and per-request telemetry check."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    found = match(scope["path"])
    if found is None:
        return False
    limit = container.settings.events_max_body_bytes
    status, headers, content = await _read_and_handle(container, scope, receive, found, limit)
    if b"content-length" not in (h for h, _ in headers):
        headers = [*headers, (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
    return True


async def _read_and_handle(container: Container, scope: Scope, receive: Receive,
                           found: tuple[str, str | None], limit: int) -> Answer:
    length = next((value for name, value in scope["headers"] if name == b"content-length"),
                  None)
    try:
        body = await bodies.read_body(receive, length, limit, bodies.EVENTS)
    except bodies.BodyTooLarge as exc:
        return exc.answer()
    except ClientDisconnect:
        return 400, [], b""  # nobody is listening any more
    client = scope.get("client")
    return await handle(container, org_id=found[0], tracking_id=found[1],
                        body=body, client=client[0] if client else "unknown")


# ------------------------------------------------------------------- documented routes

_REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["TrackingId", "DeviceToken", "PushNotificationStatus"],
    "properties": {
        "TrackingId": {"type": "string", "format": "uuid",
                       "description": "The notification's trackingId (the send id)."},
        "DeviceToken": {"type": "string",
                        "description": "The device token as registered (Web Push: the "
                                       "subscription endpoint)."},
        "PushNotificationStatus": {
            "oneOf": [{"type": "integer", "enum": [0, 1]},
                      {"type": "string", "enum": ["0", "1", "Opened", "Clicked", "Delivered",
                                                  "Dismissed"]}],
            "description": "1 / \"1\" / \"Opened\"; 0 / \"0\" / \"Clicked\"; Clarion also "
                           "accepts \"Delivered\" and \"Dismissed\" (names are "
                           "case-insensitive)."},
        "Timestamp": {"type": "string", "format": "date-time",
                      "description": "Clarion extension: when it happened (≤ 30 days ago, not "
                                     "in the future). Default: now."},
    },
}
_LEGACY_SCHEMA: dict[str, Any] = {
    **_REPORT_SCHEMA, "required": ["DeviceToken", "PushNotificationStatus"],
    "properties": {k: v for k, v in _REPORT_SCHEMA["properties"].items() if k != "TrackingId"},
}
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


def _doc(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": schema}}}}


async def _route(request: Request, container: Container, org_id: str,
                 tracking_id: str | None) -> Response:
    body = await request.body()  # bounded by CLARION_EVENTS_MAX_BODY_BYTES (EventsRoute)
    client = request.client.host if request.client else "unknown"
    status, headers, content = await handle(container, org_id=org_id, tracking_id=tracking_id,
                                            body=body, client=client)
    return Response(content=content, status_code=status,
                    headers={k.decode(): v.decode() for k, v in headers
                             if k != b"content-length"})


@router.post("/api/v1.0/orgs/{org_id}/pushdatareceiver/events", status_code=202,
             response_class=Response, openapi_extra=_doc({"oneOf": [_REPORT_SCHEMA, {
                 "type": "array", "items": _REPORT_SCHEMA, "minItems": 1, "maxItems": 100,
                 "description": "Clarion extension: up to 100 reports, all or nothing."}]}),
             responses=_RESPONSES)
async def report_interaction(org_id: str, request: Request, container: ContainerDep) -> Response:
    """Report that a notification was opened (or clicked, delivered, dismissed)."""
    return await _route(request, container, org_id, None)


@router.post("/api/v1.0/orgs/{org_id}/pushchannel/event/trackings/{tracking_id}",
             status_code=202, response_class=Response, openapi_extra=_doc(_LEGACY_SCHEMA),
             responses=_RESPONSES)
async def report_interaction_legacy(org_id: str, tracking_id: str, request: Request,
                                    container: ContainerDep) -> Response:
    """Legacy API v1: PushNotificationStatus 0 = Clicked, 1 = Opened."""
    return await _route(request, container, org_id, tracking_id)
