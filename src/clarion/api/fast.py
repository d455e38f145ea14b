"""The raw-ASGI fast path: the two hottest endpoint families, answered before FastAPI.

CIJ device registrations and interaction reports are called once per device and once per
notification shown; FastAPI's routing, request object, dependency solving, middleware stack
and per-request telemetry check cost more than the rest of such a request (measured: ~4.9k
req/s for an empty FastAPI POST handler against ~12.5k for raw ASGI on one core). So the
application object (``clarion.api.app``) hands every request to ``answer`` first; a
``FastRoute`` that matches the path answers it here, with everything such a request needs done
once, the same way for both families:

1. match the path (``FastRoute.match``: plain string work, no regex on the events path);
2. read the body through ``clarion.api.body.read_body`` with the route's limit (one reading
   loop, one 413, the same as every FastAPI route);
3. check the path's organization id (``canonical_org``: a GUID, cached);
4. call the route's handler with a ``FastRequest``;
5. turn any error into the application's JSON error answer (``clarion.api.errors``).

The documented FastAPI routes of the same endpoints (they exist for OpenAPI, and for an app
built without the fast path) build a ``FastRequest`` from their ``Request`` and call the very
same handler (``answer_request``), so both give the same answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from fastapi import Request, Response
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from clarion.api import body as bodies
from clarion.api.errors import error_answer
from clarion.errors import InvalidInput
from clarion.ids import canonical_guid

if TYPE_CHECKING:
    from clarion.bootstrap import Container

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]  # status, headers, body
JSON_CONTENT = (b"content-type", b"application/json")


class FastRequest(NamedTuple):
    """What a handler gets. A named tuple rather than a frozen dataclass: as immutable, and
    built with one tuple allocation instead of one ``object.__setattr__`` per field (this is
    built once per request on the two hottest paths)."""

    org_id: str  # canonical (checked before the handler runs)
    params: tuple[str, ...]  # what the route's ``match`` took from the path after the org
    body: bytes
    headers: Sequence[tuple[bytes, bytes]]  # as ASGI gives them: lower-case names
    client: str  # the client's address (rate limits)


Handler = Callable[["Container", FastRequest], Awaitable[Answer]]


@dataclass(frozen=True, slots=True)
class FastRoute:
    """One endpoint family: ``match`` gives (org id segment, *params) for its POST paths or
    None; ``bound`` is its body limit; ``handle`` answers a checked request."""

    match: Callable[[str], tuple[str, ...] | None]
    bound: bodies.Bound
    handle: Handler


_known_orgs: dict[str, str] = {}  # path segment -> canonical org id (validated once)


def canonical_org(segment: str) -> str:
    """The organization id of a path segment (a GUID in any case), or InvalidInput."""
    known = _known_orgs.get(segment)
    if known is not None:
        return known
    try:
        canonical = canonical_guid(segment) or str(uuid.UUID(segment))
    except ValueError as exc:
        raise InvalidInput(f"{segment!r} is not an organization id",
                           fix="Use the organization id from the app's developer information.",
                           field="orgId") from exc
    if len(_known_orgs) < 10_000:  # bounded: junk ids cannot grow it past that
        _known_orgs[segment] = canonical
    return canonical


async def _answer(container: Container, route: FastRoute, found: tuple[str, ...], raw: bytes,
                  headers: Sequence[tuple[bytes, bytes]], client: str) -> Answer:
    """The handler's answer to a body already read (within the route's limit)."""
    try:
        request = FastRequest(canonical_org(found[0]), found[1:], raw, headers, client)
        return await route.handle(container, request)
    except ClientDisconnect:
        raise
    except Exception as exc:  # outside FastAPI: the same answers as its exception handlers
        return error_answer(exc)


async def answer(routes: Sequence[FastRoute], container: Container, scope: Scope,
                 receive: Receive, send: Send) -> bool:
    """Answer ``scope`` if one of ``routes`` matches it; False (nothing read) otherwise."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    path: str = scope["path"]
    for route in routes:
        found = route.match(path)
        if found is not None:
            break
    else:
        return False
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    # Plain loops, not generators: these run on every request of the two hottest paths.
    length = None
    for name, value in headers:
        if name == b"content-length":
            length = value
            break
    client = scope.get("client")
    bound = route.bound
    try:
        raw = await bodies.read_body(receive, length, bound.limit(container.settings), bound)
    except bodies.BodyTooLarge as exc:
        status, out, content = exc.answer()
    except ClientDisconnect:
        return True  # nobody is listening any more
    except Exception as exc:  # pragma: no cover - receive() failing: answered like the rest
        status, out, content = error_answer(exc)
    else:
        try:
            status, out, content = await _answer(container, route, found, raw, headers,
                                                 client[0] if client else "unknown")
        except ClientDisconnect:
            return True
    for name, _ in out:
        if name == b"content-length":
            break
    else:
        out = [*out, (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": content})
    return True


async def answer_request(route: FastRoute, request: Request) -> Response:
    """The documented FastAPI route's answer: the same handler, the same errors."""
    found = route.match(request.url.path)
    if found is None:  # pragma: no cover - FastAPI routed it here by the same path
        raise InvalidInput("this path is not one of the route's", fix="Check the URL.")
    container: Container = request.app.state.container

    try:
        raw = await request.body()  # bounded by the route class (clarion.api.intake)
    except bodies.BodyTooLarge as exc:
        status, headers, content = exc.answer()
    else:
        client = request.client.host if request.client else "unknown"
        status, headers, content = await _answer(container, route, found, raw,
                                                 request.scope["headers"], client)
    return Response(content, status_code=status,
                    headers={k.decode(): v.decode() for k, v in headers
                             if k != b"content-length"})
