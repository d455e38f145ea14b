"""Wire shapes of the native people API (``/v1/orgs/{org_id}/people``).

Types here are deliberately loose (plain strings): the domain validates and normalises every
value, so a wrong email or phone gets the same 400 with a fix through the API, the CLI and the
import alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clarion.domain.people import PersonPage as DomainPage
from clarion.domain.people import PersonRead as DomainPerson

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


class PersonRead(BaseModel):
    id: str
    kind: Kind
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    time_zone: str | None
    locale: str | None
    attributes: dict[str, AttributeValue]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, person: DomainPerson) -> PersonRead:
        return cls(
            id=person.id, kind=person.kind, email=person.email, phone=person.phone,
            first_name=person.first_name, last_name=person.last_name,
            time_zone=person.time_zone, locale=person.locale,
            attributes=dict(person.attributes), created_at=person.created_at,
            updated_at=person.updated_at,
        )


class PersonPage(BaseModel):
    items: list[PersonRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on "
                                    "the last page.")

    @classmethod
    def of(cls, page: DomainPage) -> PersonPage:
        return cls(items=[PersonRead.of(p) for p in page.items], next_cursor=page.next_cursor)
