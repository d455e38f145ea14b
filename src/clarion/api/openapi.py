"""The OpenAPI document: what FastAPI derives, corrected where it would not match the answers.

FastAPI declares a 422 with its own body (``HTTPValidationError``: ``{"detail": [...]}``) on
every operation that takes parameters. Clarion never sends that shape: ``clarion.api.errors``
answers validation errors with ``{"error": {...}}``, as 422 on ``/v1`` and as 400 on the
CIJ-compatible paths (which never answer 422). So each such declaration is replaced by the
shared error schema on ``/v1`` and dropped elsewhere, and FastAPI's two schemas go. The fuzz
suite (tests/e2e/test_fuzz_openapi.py) checks every answer against this document.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

_FASTAPI_ERROR = "#/components/schemas/HTTPValidationError"
_ERROR = "#/components/schemas/ErrorBody"


def document(app: FastAPI, extra_components: dict[str, Any]) -> dict[str, Any]:
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(extra_components)
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.get("responses", {})
            declared = responses.get("422", {}).get("content", {}).get("application/json", {})
            if declared.get("schema", {}).get("$ref") != _FASTAPI_ERROR:
                continue
            if path.startswith("/v1/"):
                declared["schema"] = {"$ref": _ERROR}
            else:
                del responses["422"]
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema
