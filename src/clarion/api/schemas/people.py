"""Wire shapes of the native people API (``/v1/orgs/{org_id}/people``).

Types here are deliberately loose (plain strings): the domain validates and normalises every
value, so a wrong email or phone gets the same 400 with a fix through the API, the CLI and the
import alike. Reads are the domain's own models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clarion.domain.people import PersonPage, PersonRead

__all__ = ["Kind", "PersonCreate", "PersonPage", "PersonRead", "PersonUpdate"]

Kind = Literal["contact", "lead", "profile"]
AttributeValue = str | int | float | bool | None


class PersonCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, description="A GUID; generated when left out.")
    kind: Kind = "contact"
    email: str | None = None
    phone: str | None = Field(None, description="E.164 (+33612345678), or national in "
                              "CLARION_DEFAULT_PHONE_REGION.")
    first_name: str | None = None
    last_name: str | None = None
    time_zone: str | None = Field(None, description="IANA name, e.g. Europe/Paris.")
    locale: str | None = Field(None, description="BCP 47 tag, e.g. fr-FR.")
    attributes: dict[str, AttributeValue] = Field(
        default_factory=dict, description="Up to 100 scalar values, for personalisation.")


class PersonUpdate(BaseModel):
    """Only the fields sent change; null clears one. ``attributes`` replaces them all."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    time_zone: str | None = None
    locale: str | None = None
    attributes: dict[str, AttributeValue] | None = None
