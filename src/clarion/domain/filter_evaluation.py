"""The in-memory evaluation of the filter language (``clarion.domain.filters``), for journey
branches and trigger ``when`` conditions: ``evaluate`` a parsed filter on a person's facts
(``person_facts``, ``facts_of``). It types values exactly as the SQL compilation
(``clarion.store.segments``) does, so both pick the same people.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from clarion.domain.filters import (
    PERSON_FIELDS,
    And,
    Compare,
    Filter,
    HasDevice,
    In,
    InSegment,
    Not,
    TextMatch,
    Value,
)
from clarion.domain.people import PersonRead


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, str):
        return "text"
    return "other"  # lists, objects: never equal to a literal


def _compare(actual: object, op: str, expected: Value) -> bool:
    kind = _kind(expected)
    if kind == "null":
        return (actual is None) == (op == "eq")
    if _kind(actual) != kind:
        return op == "ne"
    if op == "eq":
        return actual == expected
    if op == "ne":
        return actual != expected
    a, b = actual, expected
    if op == "gt":
        return a > b  # type: ignore[operator]
    if op == "ge":
        return a >= b  # type: ignore[operator]
    if op == "lt":
        return a < b  # type: ignore[operator]
    return a <= b  # type: ignore[operator]


def evaluate(node: Filter, facts: Mapping[str, object], *,
             device_apps: Collection[str] = (), segments: Collection[str] = ()) -> bool:
    """Whether ``facts`` (person fields, attributes and trigger data, by name; a missing name
    is null) match ``node``. ``device_apps``: the apps the person has a valid device for;
    ``segments``: the segments they are a member of."""
    if isinstance(node, Compare):
        return _compare(facts.get(node.field), node.op, node.value)
    if isinstance(node, In):
        actual = facts.get(node.field)
        return any(_compare(actual, "eq", value) for value in node.values)
    if isinstance(node, TextMatch):
        actual = facts.get(node.field)
        if not isinstance(actual, str):
            return False
        if node.function == "contains":
            return node.value in actual
        if node.function == "startswith":
            return actual.startswith(node.value)
        return actual.endswith(node.value)
    if isinstance(node, HasDevice):
        return node.app_id in device_apps
    if isinstance(node, InSegment):
        return node.segment_id in segments
    if isinstance(node, Not):
        return not evaluate(node.item, facts, device_apps=device_apps, segments=segments)
    if isinstance(node, And):
        return all(evaluate(item, facts, device_apps=device_apps, segments=segments)
                   for item in node.items)
    return any(evaluate(item, facts, device_apps=device_apps, segments=segments)
               for item in node.items)


def person_facts(fields: Mapping[str, object], attributes: Mapping[str, object],
                 trigger: Mapping[str, object] | None = None) -> dict[str, object]:
    """The facts ``evaluate`` reads: attributes, then person fields over them (a field name
    always means the field), then the trigger's data over both (in a trigger context its
    attributes are what the condition is about)."""
    facts: dict[str, object] = dict(attributes)
    facts.update({name: fields.get(name) for name in PERSON_FIELDS})
    if trigger:
        facts.update(trigger)
    return facts


def facts_of(person: PersonRead, trigger: Mapping[str, object] | None = None
             ) -> dict[str, object]:
    """``person_facts`` of a stored person (and the data of the trigger that started the
    journey, if any)."""
    fields = {name: getattr(person, name) for name in PERSON_FIELDS}
    return person_facts(fields, person.attributes, trigger)
