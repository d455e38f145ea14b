"""A JSON response rendered with orjson (FastAPI deprecated its own ORJSONResponse).

A ``JSONResponse`` subclass, so that FastAPI documents the response model of routes that use it
(for any other response class it declares the body as ``type: string``)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class JSON(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
