"""Wire shapes of the native people API (``/v1/orgs/{org_id}/people``).

Types here are deliberately loose (plain strings): the domain validates and normalises every
value, so a wrong email or phone gets the same 400 with a fix through the API, the CLI and the
import alike. Reads are the domain's own models.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from clarion.domain.people import Kind, PersonPage, PersonRead, Scalar

__all__ = ["Kind", "PersonCreate", "PersonPage", "PersonRead", "PersonUpdate"]


class _PersonFields(BaseModel):
    """The fields of a person a create or an update gives."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind | None = None
    email: str | None = None
    phone: str | None = Field(None, description="E.164 (+33612345678), or national in "
                              "CLARION_DEFAULT_PHONE_REGION.")
    first_name: str | None = None
    last_name: str | None = None
    time_zone: str | None = Field(None, description="IANA name, e.g. Europe/Paris.")
    locale: str | None = Field(None, description="BCP 47 tag, e.g. fr-FR.")
    attributes: dict[str, Scalar] | None = None


class _NewPersonId(BaseModel):
    id: str | None = Field(None, description="A GUID; generated when left out.")


# Pydantic orders fields from the last base to the class itself: id comes first.
class PersonCreate(_PersonFields, _NewPersonId):
    kind: Kind = "contact"
    attributes: dict[str, Scalar] = Field(
        default_factory=dict, description="Up to 100 scalar values, for personalisation.")


class PersonUpdate(_PersonFields):
    """Only the fields sent change; null clears one. ``attributes`` replaces them all."""
