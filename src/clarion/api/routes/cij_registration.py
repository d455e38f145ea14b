"""CIJ-compatible device registration: ``/api/v1.0/orgs/{orgId}/pushdeviceregistration/…``.

No auth header, as in CIJ: the body carries ``ApiToken`` and ``MobileAppId``. The five
endpoints are one ``FastRoute`` (``clarion.api.fast``): answered before FastAPI, bodies bounded
by ``CLARION_MAX_BODY_BYTES`` (nobody is authenticated before they are read), parsed by
``clarion.domain.text.loads`` then ``clarion.domain.registration`` against the shapes declared
in ``clarion.domain.cij_shapes`` — from which the OpenAPI document of the routes below is
generated, so the contract is written once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Request, Response

from clarion.api import body as bodies
from clarion.api.fast import JSON_CONTENT, Answer, FastRequest, FastRoute, answer_request
from clarion.api.intake import CheckedRoute
from clarion.api.schemas import cij
from clarion.api.schemas.errors import CIJ_ERRORS
from clarion.domain import cij_shapes as shapes
from clarion.domain import registration as reg
from clarion.domain import text
from clarion.services.registration import Callback

if TYPE_CHECKING:
    from clarion.bootstrap import Container

_PREFIX = "/api/v1.0/orgs/"
_FAMILY = "/pushdeviceregistration/"
_SUFFIXES = frozenset({"devices", "devices/batch", "devices/status/", "devices/status",
                       "devices/cleanup", "devices/cleanup/batch"})


def match(path: str) -> tuple[str, ...] | None:
    """(org id segment, endpoint) when ``path`` is one of the registration endpoints."""
    if not path.startswith(_PREFIX):
        return None
    org, sep, tail = path[len(_PREFIX):].partition(_FAMILY)
    if not sep or not org or "/" in org or tail not in _SUFFIXES:
        return None
    return org, tail


_MS = b"x-ms-"


def _ms_headers(request: FastRequest) -> dict[bytes, str]:
    """The request's ``x-ms-*`` headers (CIJ's tracking and callback options), read in one
    pass over the headers: most requests carry none."""
    found: dict[bytes, str] = {}
    for key, value in request.headers:
        if key.startswith(_MS):
            found[key] = value.decode("latin-1")
    return found


def _callback(ms: dict[bytes, str]) -> Callback | None:
    url = ms.get(b"x-ms-callback-url")
    target = (url or ms.get(b"x-ms-status-callback-url") or "").strip()
    if not target:
        return None
    text.controls(target, "x-ms-callback-url" if url and url.strip() else
                  "x-ms-status-callback-url")
    return Callback(url=target,
                    headers=reg.parse_callback_headers(ms.get(b"x-ms-callback-url-headers")))


async def _handle(container: Container, request: FastRequest) -> Answer:
    endpoint = request.params[0]
    registration = container.registration
    doc = text.loads(request.body)
    if endpoint.startswith("devices/status"):
        query = reg.parse_status_query(doc)
        entries = await registration.statuses(request.org_id, query.mobile_app_id,
                                              query.api_token, query.request_ids)
        return 200, [JSON_CONTENT], orjson.dumps([
            {"RegistrationRequestId": e.request_id, "Status": e.status.value,
             "FailureReason": e.failure_reason} for e in entries])
    if endpoint.startswith("devices/cleanup"):
        cleanups = (reg.parse_cleanup_batch(doc) if endpoint.endswith("batch")
                    else [reg.parse_cleanup(doc)])
        await registration.accept_cleanups(request.org_id, cleanups)
        return 202, [], b""
    batch = endpoint == "devices/batch"
    devices = reg.parse_device_batch(doc) if batch else [reg.parse_device(doc)]
    ms = _ms_headers(request)
    tracked = (ms.get(b"x-ms-track-registration") or "").strip().lower() == "true"
    ids = await registration.accept_devices(request.org_id, devices, tracked=tracked,
                                            callback=_callback(ms))
    if not tracked:
        return 202, [], b""
    if batch:
        return 202, [JSON_CONTENT], orjson.dumps([{"RegistrationRequestId": i} for i in ids])
    return 202, [JSON_CONTENT], orjson.dumps({"RegistrationRequestId": ids[0]})


REGISTRATION = FastRoute(match, bodies.UNAUTHENTICATED, _handle)

# ------------------------------------------------------------------- documented routes

router = APIRouter(prefix="/api/v1.0/orgs/{org_id}/pushdeviceregistration",
                   tags=["CIJ device registration"], route_class=CheckedRoute,
                   responses=CIJ_ERRORS)


def _body_doc(shape: shapes.Shape, *, array: bool = False) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{shape.name}"}
    body = {"type": "array", "items": ref, "minItems": 1, "maxItems": 100} if array else ref
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": body}}}}


def openapi_components() -> dict[str, Any]:
    """The request shapes the ``openapi_extra`` bodies refer to (merged by the app factory)."""
    return {shape.name: shape.json_schema() for shape in shapes.REQUEST_SHAPES}


# Read from the request's headers rather than as FastAPI Header() parameters (this is the hot
# path); documented here instead.
_HEADER_DOCS: list[dict[str, Any]] = [
    {"name": "x-ms-track-registration", "in": "header", "required": False,
     "schema": {"type": "string", "enum": ["true", "false"]},
     "description": "true: answer the request ids and keep the outcome for the status API."},
    {"name": "x-ms-callback-url", "in": "header", "required": False,
     "schema": {"type": "string"}, "description": "POSTed once with the outcome."},
    {"name": "x-ms-status-callback-url", "in": "header", "required": False,
     "schema": {"type": "string"}, "description": "Another name of x-ms-callback-url."},
    {"name": "x-ms-callback-url-headers", "in": "header", "required": False,
     "schema": {"type": "string"},
     "description": "JSON object of headers added to the callback POST."},
]


def _with_headers(doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "parameters": _HEADER_DOCS}


_ACCEPTED_DEVICES = ("Accepted. Body only with x-ms-track-registration: true (otherwise "
                     "empty, without Content-Type).")


@router.post("/devices", status_code=202, response_class=Response,
             openapi_extra=_with_headers(_body_doc(shapes.DEVICE_REGISTRATION)),
             responses={202: {"model": cij.Tracked, "description": _ACCEPTED_DEVICES}})
async def register_device(org_id: str, request: Request) -> Response:
    """Register one device (asynchronous: check the outcome with the status endpoint)."""
    return await answer_request(REGISTRATION, request)


@router.post("/devices/batch", status_code=202, response_class=Response,
             openapi_extra=_with_headers(_body_doc(shapes.DEVICE_REGISTRATION, array=True)),
             responses={202: {"model": list[cij.Tracked], "description": _ACCEPTED_DEVICES}})
async def register_devices(org_id: str, request: Request) -> Response:
    """Register up to 100 devices."""
    return await answer_request(REGISTRATION, request)


@router.post("/devices/status/", response_class=Response,
             openapi_extra=_body_doc(shapes.STATUS_QUERY),
             responses={200: {"model": list[cij.StatusEntry]}})
async def registration_status(org_id: str, request: Request) -> Response:
    """Status of tracked registration requests, in the order asked."""
    return await answer_request(REGISTRATION, request)


@router.post("/devices/status", include_in_schema=False)
async def registration_status_no_slash(org_id: str, request: Request) -> Response:
    return await answer_request(REGISTRATION, request)


@router.post("/devices/cleanup", status_code=202, response_class=Response,
             openapi_extra=_body_doc(shapes.DEVICE_CLEANUP),
             responses={202: {"description": "Accepted (no body)."}})
async def cleanup_device(org_id: str, request: Request) -> Response:
    """Remove a user's device (or all their devices for the app when DeviceToken is absent)."""
    return await answer_request(REGISTRATION, request)


@router.post("/devices/cleanup/batch", status_code=202, response_class=Response,
             openapi_extra=_body_doc(shapes.DEVICE_CLEANUP, array=True),
             responses={202: {"description": "Accepted (no body)."}})
async def cleanup_devices(org_id: str, request: Request) -> Response:
    """Up to 100 cleanups (a single object is accepted too, as in CIJ's sample)."""
    return await answer_request(REGISTRATION, request)
