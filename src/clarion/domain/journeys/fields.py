"""The field readers of a journey document (``FieldReader``): each reads one field of its JSON
form into a value and records a ``Problem`` (naming the field, and the step it is in) for what
is wrong with it instead of raising, so reading goes on and every problem is found at once.
Used by ``reading`` and ``step_reading``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from clarion.domain.journeys.document import MAX_ID_LENGTH, ConditionParser, Problem
from clarion.domain.journeys.durations import MAX_WAIT, parse_duration


class FieldReader:
    """Collects problems while turning the JSON document into values."""

    def __init__(self, parse_condition: ConditionParser) -> None:
        self.problems: list[Problem] = []
        self._parse_condition = parse_condition
        self.step: str | None = None

    def bad(self, fld: str, message: str) -> None:
        self.problems.append(Problem(fld, message, self.step))

    def text(self, doc: Mapping[str, Any], key: str, where: str, *, required: bool = True,
             max_length: int = MAX_ID_LENGTH) -> str | None:
        value = doc.get(key)
        if value is None:
            if required:
                self.bad(where, "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.bad(where, "must be a non-empty string")
            return None
        if len(value) > max_length:
            self.bad(where, f"is longer than {max_length} characters")
            return None
        return value

    def choice(self, doc: Mapping[str, Any], key: str, where: str, allowed: Sequence[str],
               default: str | None = None) -> str | None:
        value = doc.get(key, default)
        if value is None:
            self.bad(where, f"is required: one of {', '.join(allowed)}")
            return None
        if value not in allowed:
            self.bad(where, f"{value!r} is not one of {', '.join(allowed)}")
            return None
        return str(value)

    def condition(self, doc: Mapping[str, Any], key: str, where: str, *,
                  required: bool = False) -> str | None:
        value = self.text(doc, key, where, required=required, max_length=4000)
        if value is None:
            return None
        try:
            self._parse_condition(value)
        except ValueError as exc:
            self.bad(where, f"is not a valid condition: {exc}")
        except Exception as exc:  # an InvalidInput of the filter language
            message = getattr(exc, "message", None) or str(exc)
            self.bad(where, f"is not a valid condition: {message}")
        return value

    def number(self, doc: Mapping[str, Any], key: str, where: str, low: float, high: float,
               *, required: bool = True) -> float | None:
        value = doc.get(key)
        if value is None:
            if required:
                self.bad(where, f"is required: a number from {low:g} to {high:g}")
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not low <= value <= high:
            self.bad(where, f"must be a number from {low:g} to {high:g}, not {value!r}")
            return None
        return float(value)

    def wait_length(self, doc: Mapping[str, Any], key: str, where: str, *,
                    required: bool = True) -> timedelta | None:
        value = doc.get(key)
        if value is None:
            if required:
                self.bad(where, "is required: an ISO-8601 duration such as 'PT8S' or 'P2D'")
            return None
        try:
            length = parse_duration(value)
        except ValueError as exc:
            self.bad(where, str(exc))
            return None
        if length <= timedelta(0) or length > MAX_WAIT:
            self.bad(where, f"must be longer than zero and at most {MAX_WAIT.days} days")
            return None
        return length

    def mapping(self, value: object, where: str) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.bad(where, "must be an object")
            return None
        return value

    def items(self, raw: Sequence[object], name: str, known: set[str]
              ) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """The objects of the list ``name`` with their field prefix (``name[i].``); an item
        that is not an object, or a field not in ``known``, is a problem."""
        for i, item in enumerate(raw):
            found = self.mapping(item, f"{name}[{i}]")
            if found is not None:
                self.unknown(found, known, f"{name}[{i}].")
                yield f"{name}[{i}].", found

    def unknown(self, doc: Mapping[str, Any], known: set[str], prefix: str) -> None:
        for key in doc:
            if key not in known:
                self.bad(f"{prefix}{key}",
                         f"is not a field here (known: {', '.join(sorted(known))})")
