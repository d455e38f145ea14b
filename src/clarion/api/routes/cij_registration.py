"""CIJ-compatible device registration: ``/api/v1.0/orgs/{orgId}/pushdeviceregistration/…``.

No auth header, as in CIJ: the body carries ``ApiToken`` and ``MobileAppId``. Bodies are parsed
here (``clarion.domain.text.loads``, then ``clarion.domain.registration``) rather than through a
pydantic model, because this is the hot path and every malformed body must get CIJ's 400 with a
message naming the field. Bodies are bounded by ``CLARION_MAX_BODY_BYTES`` (413,
``clarion.api.body``): nobody is authenticated before they are read.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from clarion.api import body as bodies
from clarion.api.deps import ContainerDep
from clarion.api.errors import error_answer
from clarion.api.intake import CheckedRoute
from clarion.api.responses import JSON
from clarion.api.schemas import cij
from clarion.api.schemas.errors import CIJ_ERRORS
from clarion.domain import registration as reg
from clarion.domain import text
from clarion.errors import InvalidInput
from clarion.ids import canonical_guid
from clarion.services import registration

router = APIRouter(prefix="/api/v1.0/orgs/{org_id}/pushdeviceregistration",
                   tags=["CIJ device registration"], route_class=CheckedRoute,
                   responses=CIJ_ERRORS)


def _body_doc(model: type[Any], *, array: bool = False) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    body = {"type": "array", "items": ref, "minItems": 1, "maxItems": 100} if array else ref
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": body}}}}


def openapi_components() -> dict[str, Any]:
    """Schemas the ``openapi_extra`` bodies above refer to (merged by the app factory)."""
    out: dict[str, Any] = {}
    for model in (cij.DeviceRegistration, cij.DeviceCleanup, cij.StatusQuery):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


async def _body(request: Request) -> bytes:
    """The body, read within CLARION_MAX_BODY_BYTES (the route class bounds the stream)."""
    try:
        return await request.body()
    except ClientDisconnect as exc:  # the client left: nothing to answer, nothing stored
        raise InvalidInput("the client disconnected before sending the whole body") from exc


async def _json(request: Request) -> Any:
    return text.loads(await _body(request))


def _org(org_id: str) -> str:
    try:
        return canonical_guid(org_id) or str(uuid.UUID(org_id))
    except ValueError as exc:
        raise InvalidInput(f"{org_id!r} is not an organization id",
                           fix="Use the organization id from the app's developer information.",
                           field="orgId") from exc


def _callback(url: str | None, status_url: str | None,
              headers: str | None) -> registration.Callback | None:
    target = (url or status_url or "").strip()
    if not target:
        return None
    text.controls(target, "x-ms-callback-url" if url and url.strip() else
                  "x-ms-status-callback-url")
    return registration.Callback(url=target, headers=reg.parse_callback_headers(headers))


# Read from request.headers rather than as FastAPI Header() parameters: validating four
# optional headers per request cost ~11 % of this hot path; they are documented here instead.
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


async def _accept(container: Any, org_id: str, batch: bool, raw: bytes,
                  headers: Mapping[str, str]) -> tuple[int, bytes]:
    """The registration itself, shared by the documented route and the fast path."""
    org = _org(org_id)
    items = (reg.parse_device_batch if batch else
             lambda b: [reg.parse_device(b)])(text.loads(raw))
    tracked = (headers.get("x-ms-track-registration") or "").strip().lower() == "true"
    ids = await registration.accept_devices(
        writer=container.writer, api_tokens=container.api_tokens, clock=container.clock,
        settings=container.settings, org_id=org, requests=items, tracked=tracked,
        callback=_callback(headers.get("x-ms-callback-url"),
                           headers.get("x-ms-status-callback-url"),
                           headers.get("x-ms-callback-url-headers")),
    )
    if not tracked:
        return 202, b""
    if batch:
        return 202, orjson.dumps([{"RegistrationRequestId": i} for i in ids])
    return 202, orjson.dumps({"RegistrationRequestId": ids[0]})


async def _register(request: Request, container: Any, org_id: str, batch: bool) -> Response:
    raw = await _body(request)
    status, content = await _accept(container, org_id, batch, raw, request.headers)
    return Response(content, status_code=status,
                    media_type="application/json" if content else None)


_FAST_PATH = re.compile(r"^/api/v1\.0/orgs/([^/]+)/pushdeviceregistration/devices(/batch)?$")


async def answer_fast(container: Any, scope: Scope, receive: Receive, send: Send) -> bool:
    """Answer a registration before FastAPI's routing and dependency machinery (about half
    of this hot path's time); False for any other request. Same code, same answers as the
    documented routes below, which remain for the OpenAPI schema."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    found = _FAST_PATH.match(scope["path"])
    if found is None:
        return False
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    limit = container.settings.max_body_bytes
    extra: list[tuple[bytes, bytes]] = []
    try:
        raw = await bodies.read_body(receive, headers.get("content-length"), limit,
                                     bodies.UNAUTHENTICATED)
        status, content = await _accept(container, found[1], found[2] is not None, raw, headers)
    except bodies.BodyTooLarge as exc:
        status, content = 413, orjson.dumps({"error": exc.error()})
    except ClientDisconnect:
        return True  # nobody is listening any more
    except Exception as exc:  # outside FastAPI: the same answers as its exception handlers
        status, answer_headers, content = error_answer(exc)
        extra = [h for h in answer_headers if h[0] != b"content-type"]
    out = [(b"content-length", str(len(content)).encode()), *extra]
    if content:
        out.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": content})
    return True


@router.post("/devices", status_code=202, response_class=Response,
             openapi_extra=_with_headers(_body_doc(cij.DeviceRegistration)),
             responses={202: {"model": cij.Tracked, "description": "Accepted. Body only with "
                              "x-ms-track-registration: true (otherwise empty, without "
                              "Content-Type)."}})
async def register_device(org_id: str, request: Request, container: ContainerDep) -> Response:
    """Register one device (asynchronous: check the outcome with the status endpoint)."""
    return await _register(request, container, org_id, False)


@router.post("/devices/batch", status_code=202, response_class=Response,
             openapi_extra=_with_headers(_body_doc(cij.DeviceRegistration, array=True)),
             responses={202: {"model": list[cij.Tracked], "description": "Accepted. Body only "
                              "with x-ms-track-registration: true (otherwise empty, without "
                              "Content-Type)."}})
async def register_devices(org_id: str, request: Request, container: ContainerDep) -> Response:
    """Register up to 100 devices."""
    return await _register(request, container, org_id, True)


async def _status(org_id: str, request: Request, container: Any) -> Response:
    org = _org(org_id)
    query = reg.parse_status_query(await _json(request))
    entries = await registration.statuses(
        db=container.db, api_tokens=container.api_tokens, org_id=org,
        app_id=query.mobile_app_id, api_token=query.api_token, request_ids=query.request_ids)
    return JSON([{"RegistrationRequestId": e.request_id, "Status": e.status.value,
                  "FailureReason": e.failure_reason} for e in entries])


_STATUS_DOC: dict[str, Any] = {
    "openapi_extra": _body_doc(cij.StatusQuery),
    "responses": {200: {"model": list[cij.StatusEntry]}},
}


@router.post("/devices/status/", **_STATUS_DOC)
async def registration_status(org_id: str, request: Request, container: ContainerDep) -> Response:
    """Status of tracked registration requests, in the order asked."""
    return await _status(org_id, request, container)


@router.post("/devices/status", include_in_schema=False)
async def registration_status_no_slash(
    org_id: str, request: Request, container: ContainerDep
) -> Response:
    return await _status(org_id, request, container)


async def _cleanup(org_id: str, request: Request, container: Any, batch: bool) -> Response:
    org = _org(org_id)
    body = await _json(request)
    items = reg.parse_cleanup_batch(body) if batch else [reg.parse_cleanup(body)]
    await registration.accept_cleanups(
        writer=container.writer, api_tokens=container.api_tokens, clock=container.clock,
        org_id=org, requests=items)
    return Response(status_code=202)


@router.post("/devices/cleanup", status_code=202, response_class=Response,
             openapi_extra=_body_doc(cij.DeviceCleanup),
             responses={202: {"description": "Accepted (no body)."}})
async def cleanup_device(org_id: str, request: Request, container: ContainerDep) -> Response:
    """Remove a user's device (or all their devices for the app when DeviceToken is absent)."""
    return await _cleanup(org_id, request, container, False)


@router.post("/devices/cleanup/batch", status_code=202, response_class=Response,
             openapi_extra=_body_doc(cij.DeviceCleanup, array=True),
             responses={202: {"description": "Accepted (no body)."}})
async def cleanup_devices(org_id: str, request: Request, container: ContainerDep) -> Response:
    """Up to 100 cleanups (a single object is accepted too, as in CIJ's sample)."""
    return await _cleanup(org_id, request, container, True)
