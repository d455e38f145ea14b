"""Map the error tree to HTTP. The only place that knows status codes for ClarionError.

A database that is locked, read-only or unreachable reaches here as ``DatabaseUnavailable``
(``Database.read()/write()`` translate the drivers' errors): a JSON 503 with ``Retry-After``.
Any other unhandled exception is a JSON 500 that names nothing of it (the traceback goes to the
log). ``error_answer`` gives the same answers to the raw-ASGI fast paths, which run outside
FastAPI's exception handling."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from clarion import errors
from clarion.api.body import BodyTooLarge
from clarion.api.responses import JSON as ORJSONResponse

log = logging.getLogger(__name__)

STATUS: dict[type[errors.ClarionError], int] = {
    errors.InvalidInput: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.RetryLater: 503,
    errors.ServiceUnavailable: 503,
    errors.ConfigurationError: 500,
}
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def status_for(exc: errors.ClarionError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def headers_for(exc: errors.ClarionError) -> dict[str, str] | None:
    if isinstance(exc, errors.ServiceUnavailable):
        return {"retry-after": str(exc.retry_after_seconds)}
    return None


def _internal() -> dict[str, Any]:
    return error_body("internal_error", "the server failed to answer this request",
                      fix="Retry later; if it keeps failing, tell the operator (the server "
                          "log has the details).")


def error_answer(exc: BaseException) -> Answer:
    """(status, headers, body) for ``exc`` on a raw-ASGI path; logs what it does not show."""
    known = exc if isinstance(exc, errors.ClarionError) else None
    if known is None:
        log.error("unhandled error", exc_info=exc)
        status, body = 500, _internal()
        extra: dict[str, str] = {}
    else:
        status, body = status_for(known), {"error": known.as_dict()}
        if status >= 500 and not isinstance(known, errors.ServiceUnavailable):
            log.error("server-side error: %s", known)
        extra = headers_for(known) or {}
    headers = [(b"content-type", b"application/json"),
               *((k.encode(), v.encode()) for k, v in extra.items())]
    return status, headers, orjson.dumps(body)


def _describe(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",))
    return f"{loc}: {err.get('msg', 'invalid')}" if loc else str(err.get("msg", "invalid"))


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.ClarionError)
    async def _clarion(_req: Request, exc: errors.ClarionError) -> ORJSONResponse:
        status = status_for(exc)
        if status >= 500 and not isinstance(exc, errors.ServiceUnavailable):
            log.error("server-side error: %s", exc)
        return ORJSONResponse({"error": exc.as_dict()}, status_code=status,
                              headers=headers_for(exc))

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception) -> ORJSONResponse:
        # Starlette's ServerErrorMiddleware calls this, sends the answer and re-raises, so
        # the server still logs the traceback.
        return ORJSONResponse(_internal(), status_code=500)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_req: Request, exc: BodyTooLarge) -> ORJSONResponse:
        return ORJSONResponse({"error": exc.error()}, status_code=413)

    @app.exception_handler(RequestValidationError)
    async def _validation(req: Request, exc: RequestValidationError) -> ORJSONResponse:
        problems = [_describe(e) for e in exc.errors()]
        # CIJ-compatible routes answer 400 for any bad input, as CIJ does.
        status = 400 if req.url.path.startswith("/api/") else 422
        return ORJSONResponse(
            error_body("invalid_input", "the request is not valid: " + "; ".join(problems[:5]),
                       problems=problems,
                       fix="Correct the fields named above; the API reference is at /docs."),
            status_code=status,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> ORJSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return ORJSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code,
                              headers=getattr(exc, "headers", None))
