"""What every FastAPI route does with a request before its endpoint runs: ``CheckedRoute``.

In order, cheapest first, and before the body is read:

1. URL text: a path or query parameter holding NUL (``%00``) is a 400 naming the parameter
   (the text rule of ``clarion.domain.text``; a URL cannot carry a lone surrogate: servers
   decode percent-escapes as UTF-8 with replacement).
2. A ``Content-Length`` over the route's limit: 413 (``clarion.api.body``).
3. Admin-token routes (those that depend on ``AdminOrg`` / ``TokenOrg``): the token is checked
   now, so a client without one gets its 401 (404 for another org) without its body being read
   — FastAPI reads and parses a body *before* it solves dependencies, which is how a 50 MB
   body without a token used to be read and parsed before the 401. The dependency then reuses
   this answer (one check per request).
4. The body is read through ``bounded`` (413 past the limit while reading), and a JSON body is
   parsed by ``clarion.domain.text.loads`` rather than by FastAPI's ``json.loads``: orjson,
   nesting bounded, a syntax error located by line and column, and no text that the database
   cannot store, at any depth, in keys as in values — whatever the route's model says, so that
   new fields get the rule for free. A route's body is JSON whatever its ``Content-Type``
   says (as on the CIJ paths): ``curl -d`` without a JSON content type, which FastAPI would
   refuse as "Input should be a valid dictionary", is read the same way, and its syntax
   errors say line and column too.

It is a route class (FastAPI's documented way to customise request handling,
``APIRouter(route_class=...)``) rather than an ASGI middleware because its errors then go
through the application's exception handlers like every other error.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from email.message import Message
from typing import Any, ClassVar

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.types import Scope

from clarion.api import body, deps
from clarion.domain import text

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _authentication(dependant: Dependant) -> Callable[..., Any] | None:
    """``deps.admin_org`` or ``deps.token_org`` when the route depends on one."""
    stack = [dependant]
    while stack:
        current = stack.pop()
        if current.call in (deps.admin_org, deps.token_org):
            return current.call
        stack.extend(current.dependencies)
    return None


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI would parse this body as JSON (its own rule, strict content type)."""
    if not content_type:
        return False
    message = Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _check_url_text(scope: Scope, request: Request) -> None:
    if "\x00" in scope["path"]:
        for name, value in request.path_params.items():
            if isinstance(value, str):
                text.check_text(value, name)
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for name, value in request.query_params.multi_items():
            text.check_text(name, "a query parameter name")
            text.check_text(value, name)


class _Parsed(Request):
    """The request as the endpoint sees it once the intake has read and parsed its body."""

    def __init__(self, scope: Scope, raw: bytes, document: Any) -> None:
        if not _is_json(Request(scope).headers.get("content-type")):
            # FastAPI hands the endpoint ``json()`` only for a JSON content type.
            scope = {**scope, "headers": [
                *((k, v) for k, v in scope["headers"] if k != b"content-type"),
                (b"content-type", b"application/json")]}
        super().__init__(scope)
        self._raw = raw
        self._document = document

    async def body(self) -> bytes:
        return self._raw

    async def json(self) -> Any:
        return self._document


class CheckedRoute(APIRoute):
    """A route whose requests pass the intake described in the module docstring."""

    # The limit for a route nobody authenticates before its body is read; admin-token routes
    # take ``body.ADMIN`` whatever this says.
    bound: ClassVar[body.Bound] = body.UNAUTHENTICATED

    def get_route_handler(self) -> Handler:
        handle = super().get_route_handler()
        auth = _authentication(self.dependant)
        bound = body.ADMIN if auth is not None else self.bound
        takes_body = self.body_field is not None

        async def intake(request: Request) -> Response:
            scope = request.scope
            _check_url_text(scope, request)
            container = request.app.state.container
            limit = bound.limit(container.settings)
            if body.declared_over(request.headers.get("content-length"), limit):
                raise body.BodyTooLarge(limit, bound)
            if auth is not None:
                org_id = request.path_params.get("org_id") if auth is deps.admin_org else None
                await deps.authenticate(request, container.orgs, org_id)
            request = Request(scope, body.bounded(request.receive, limit, bound))
            if takes_body:
                raw = await request.body()
                if raw:
                    request = _Parsed(scope, raw, text.loads(raw))
            return await handle(request)

        return intake


class EventsRoute(CheckedRoute):
    """The interaction-report routes: their own, smaller limit."""

    bound = body.EVENTS
