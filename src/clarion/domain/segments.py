"""Segments and triggers as the services hand them out: typed, immutable reads.

A segment is either ``dynamic`` (a filter in the language of ``clarion.domain.filters``,
evaluated by the database whenever it is read) or ``static`` (a list of people imported once).
A trigger is a name and typed attributes; firing it publishes an event that journeys follow.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from clarion.domain.filters import parse_datetime
from clarion.errors import InvalidInput

SegmentKind = Literal["dynamic", "static"]
AttributeType = Literal["string", "number", "boolean", "datetime"]
ATTRIBUTE_TYPES: tuple[AttributeType, ...] = ("string", "number", "boolean", "datetime")
MAX_NAME = 200
MAX_TRIGGER_NAME = 100
MAX_TRIGGER_ATTRIBUTES = 100
TRIGGER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,99}$")
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


@dataclass(frozen=True, slots=True)
class SegmentRead:
    id: str
    name: str
    kind: SegmentKind
    filter: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SegmentSize:
    count: int
    sample: Annotated[list[str], Field(description="Up to 10 member ids, in id order.")]


@dataclass(frozen=True, slots=True)
class ImportResult:
    added: int
    already: Annotated[int, Field(description="Lines naming someone already a member.")]
    unknown: Annotated[list[str], Field(description="Ids or emails that are nobody in the org "
                                        "(at most 100 shown).")]
    unknown_count: int


@dataclass(frozen=True, slots=True)
class TriggerRead:
    id: str
    name: str
    attributes: dict[str, AttributeType]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Firing:
    id: str
    trigger: str
    user_id: str
    data: dict[str, object]
    fired_at: datetime


def check_trigger_name(name: str) -> str:
    if not TRIGGER_NAME.match(name):
        raise InvalidInput(f"trigger name {name!r} is not allowed", field="name",
                           fix="Start with a letter; use letters, digits, _ . - (at most "
                           f"{MAX_TRIGGER_NAME} characters), e.g. cart_abandoned.")
    if name.startswith("person.") or name.startswith("interaction."):
        raise InvalidInput(f"trigger name {name!r} is reserved for built-in events",
                           field="name", fix="Choose another name.")
    return name


def check_declaration(attributes: Mapping[str, object]) -> dict[str, AttributeType]:
    if len(attributes) > MAX_TRIGGER_ATTRIBUTES:
        raise InvalidInput(f"a trigger has at most {MAX_TRIGGER_ATTRIBUTES} attributes",
                           field="attributes", fix="Declare fewer attributes.")
    out: dict[str, AttributeType] = {}
    for key, kind in attributes.items():
        if not ATTRIBUTE_NAME.match(key):
            raise InvalidInput(f"attribute name {key!r} is not allowed",
                               field=f"attributes.{key}",
                               fix="Use letters, digits and _ (not starting with a digit).")
        if kind not in ATTRIBUTE_TYPES:
            raise InvalidInput(f"attribute {key} has the type {kind!r}",
                               field=f"attributes.{key}",
                               fix=f"Use one of {', '.join(ATTRIBUTE_TYPES)}.")
        out[key] = kind
    return out


def check_data(declaration: Mapping[str, AttributeType], data: Mapping[str, object],
               trigger: str) -> dict[str, object]:
    """The fire's data, checked against the trigger's declaration (every attribute optional,
    null allowed; an undeclared one is an error: a typo must not pass silently)."""
    for key, value in data.items():
        kind = declaration.get(key)
        field = f"data.{key}"
        if kind is None:
            declared = ", ".join(sorted(declaration)) or "none"
            raise InvalidInput(f"trigger {trigger} has no attribute {key!r}", field=field,
                               fix=f"Declared attributes: {declared}.")
        if value is None:
            continue
        if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)
                                 or not math.isfinite(value)):
            raise InvalidInput(f"attribute {key} must be a number, got {value!r}", field=field,
                               fix="Send a JSON number such as 42.5.")
        if kind == "boolean" and not isinstance(value, bool):
            raise InvalidInput(f"attribute {key} must be true or false, got {value!r}",
                               field=field, fix="Send a JSON boolean.")
        if kind == "string" and not isinstance(value, str):
            raise InvalidInput(f"attribute {key} must be a string, got {value!r}", field=field,
                               fix="Send a JSON string.")
        if kind == "datetime" and (not isinstance(value, str) or parse_datetime(value) is None):
            raise InvalidInput(f"attribute {key} must be an ISO 8601 date-time, got {value!r}",
                               field=field, fix="Send e.g. \"2026-12-07T09:30:00Z\".")
    return dict(data)
