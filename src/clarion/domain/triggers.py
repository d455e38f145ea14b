"""Custom triggers: a name and typed attributes, declared once and fired with data that must
match the declaration. A fire, and the creation of a person (the business trigger
``person.created``), are published on the in-service event bus (``clarion.services.events``)
as the typed events below; journeys subscribe to them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from clarion.domain.filters import parse_datetime
from clarion.errors import InvalidInput

AttributeType = Literal["string", "number", "boolean", "datetime"]
ATTRIBUTE_TYPES: tuple[AttributeType, ...] = ("string", "number", "boolean", "datetime")
MAX_TRIGGER_NAME = 100
MAX_TRIGGER_ATTRIBUTES = 100
MAX_IDEMPOTENCY_KEY = 200
TRIGGER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,99}$")
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
PERSON_CREATED = "person.created"


@dataclass(frozen=True, slots=True)
class TriggerRead:
    id: str
    name: str
    attributes: dict[str, AttributeType]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TriggerEvent:
    """One fire of a custom trigger, as subscribers see it (topic ``trigger.<name>``)."""

    id: str  # the firing's id: the dedupe key
    org_id: str
    trigger: str
    person_id: str
    data: dict[str, object]
    fired_at: datetime

    @property
    def topic(self) -> str:
        return f"trigger.{self.trigger}"


@dataclass(frozen=True, slots=True)
class PersonCreatedEvent:
    """A person was created (API or import): topic ``person.created``. Dedupe key: the
    (org_id, person_id) pair."""

    org_id: str
    person_id: str

    @property
    def topic(self) -> str:
        return PERSON_CREATED


def check_trigger_name(name: str) -> str:
    if not TRIGGER_NAME.match(name):
        raise InvalidInput(f"trigger name {name!r} is not allowed", field="name",
                           fix="Start with a letter; use letters, digits, _ . - (at most "
                           f"{MAX_TRIGGER_NAME} characters), e.g. cart_abandoned.")
    if name.split(".")[0] in ("person", "interaction", "trigger"):
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
