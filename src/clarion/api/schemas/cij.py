"""Answers of the CIJ-compatible registration endpoints, for the OpenAPI document. (Their
request bodies are declared in ``clarion.domain.cij_shapes``, which the parsers read.)"""

from __future__ import annotations

from pydantic import BaseModel, Field


class Tracked(BaseModel):
    RegistrationRequestId: str


class StatusEntry(BaseModel):
    RegistrationRequestId: str
    Status: str = Field(description="Pending, Success or Failed")
    FailureReason: str | None = None
