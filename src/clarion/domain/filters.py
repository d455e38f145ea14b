"""The filter language of segments, journey branches and trigger ``when`` conditions.

It extends the OData subset of ``clarion.domain.odata`` (same literals, same lower-case
keywords, same errors naming the position) with what a segment needs::

    filter     := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | primary
    primary    := "(" or_expr ")"
                | FIELD OP value                       -- OP: eq ne gt ge lt le
                | FIELD "in" "(" value ("," value)* ")"
                | ("contains"|"startswith"|"endswith") "(" FIELD "," STRING ")"
                | "has_device" "(" STRING ")"          -- a currently valid device of that app
                | "in_segment" "(" STRING ")"          -- member of another segment
    value      := STRING | NUMBER | "true" | "false" | "null"

``clarion.domain.odata`` keeps its own, narrower grammar on the same tokenizer and parser core
(``clarion.domain.filter_syntax``): the CIJ lookup must refuse ``ne`` and ``contains()`` (a
backend relying on them would get the wrong people), which this language accepts.

Semantics are two-valued and typed, so that ``evaluate`` (in memory,
``clarion.domain.filter_evaluation``) and the SQL compilation (``clarion.store.segments``) agree
on every person:

* a missing attribute is ``null``; ``x ne v`` is exactly ``not (x eq v)``;
* a comparison is true only between values of the same type: ``tier eq 5`` is false for the
  text ``'5'``; numbers compare as numbers, text by code point, booleans and ``null`` only
  with ``eq``/``ne``;
* ``created_at`` compares with an ISO 8601 date-time (``created_at ge '2026-01-01'``, UTC when
  no offset is given).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from clarion.domain.filter_syntax import And as And
from clarion.domain.filter_syntax import (
    ExpressionParser,
    Token,
    token_pattern,
    tokenize,
    unquote,
)
from clarion.domain.filter_syntax import Or as Or
from clarion.errors import InvalidInput

MAX_FILTER_LENGTH = 10_000
MAX_COMPARISONS = 250  # SQLite refuses expression trees deeper than 1000
MAX_DEPTH = 32
MAX_IN_VALUES = 1000

# Person columns (text, or a date-time for created_at); every other name is an attribute.
PERSON_FIELDS = ("first_name", "last_name", "email", "phone", "time_zone", "locale", "kind",
                 "created_at")

Op = Literal["eq", "ne", "gt", "ge", "lt", "le"]
TextFunction = Literal["contains", "startswith", "endswith"]
Value = str | int | float | bool | datetime | None
_ORDERING = ("gt", "ge", "lt", "le")


class FilterError(InvalidInput):
    code = "invalid_filter"


@dataclass(frozen=True, slots=True)
class Compare:
    field: str
    op: Op
    value: Value


@dataclass(frozen=True, slots=True)
class In:
    field: str
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class TextMatch:
    function: TextFunction
    field: str
    value: str


@dataclass(frozen=True, slots=True)
class HasDevice:
    app_id: str


@dataclass(frozen=True, slots=True)
class InSegment:
    segment_id: str


@dataclass(frozen=True, slots=True)
class Not:
    item: Filter


Filter = Compare | In | TextMatch | HasDevice | InSegment | Not | And["Filter"] | Or["Filter"]

SUPPORTED = ("supported are eq ne gt ge lt le, and or not, parentheses, x in ('a','b'), "
             "contains(x,'s'), startswith(x,'s'), endswith(x,'s'), has_device('<app id>'), "
             "in_segment('<segment id>'); values: 'quoted text', numbers, true, false, null")

_KEYWORDS = {"and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "in", "null", "true",
             "false"}
_FUNCTIONS = {"contains", "startswith", "endswith", "has_device", "in_segment"}
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_NUMBER = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]+)?)(?:[eE][+-]?[0-9]+)?$")
_TOKEN = token_pattern(r"A-Za-z0-9_.+\-", comma=True)


def _error(message: str, fix: str = f"The filter language: {SUPPORTED}.") -> FilterError:
    return FilterError(message, field="filter", fix=fix)


def parse_datetime(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _Parser(ExpressionParser[Filter]):
    max_depth = MAX_DEPTH
    max_comparisons = MAX_COMPARISONS

    def __init__(self, text: str) -> None:
        super().__init__(tokenize(_TOKEN, text))

    def syntax(self, token: Token, expected: str) -> FilterError:
        if token.kind == "unclosed":
            return _error(f"the text starting at position {token.pos + 1} is not closed",
                          fix="End it with ' (write '' for a quote inside).")
        found = "the end of the filter" if token.kind == "end" else repr(token.text)
        return _error(f"syntax error at position {token.pos + 1}: expected {expected}, "
                      f"found {found}")

    def empty(self) -> FilterError:
        return _error("the filter is empty", fix="Give a filter such as tier eq 'gold'.")

    def too_deep(self, token: Token) -> FilterError:
        return _error(f"the filter nests more than {MAX_DEPTH} deep (position {token.pos + 1})",
                      fix="Flatten the filter.")

    def too_many(self, token: Token) -> FilterError:
        return _error(f"the filter has more than {MAX_COMPARISONS} conditions (position "
                      f"{token.pos + 1})", fix="Split it into segments and combine them "
                      "with in_segment().")

    def operand(self, depth: int) -> Filter:
        if self.is_word("not"):
            token = self.take()
            return Not(self.operand(self.deeper(token, depth)))
        token = self.take()
        if token.kind == "(":
            return self.group(token, depth)
        if token.kind != "word" or token.text in _KEYWORDS:
            raise self.syntax(token, "a field name, a function or '('")
        if self.peek().kind == "(":
            return self.function(token)
        return self.comparison(token)

    def field(self, token: Token) -> str:
        if token.kind != "word" or token.text in _KEYWORDS or not _FIELD.match(token.text):
            raise self.syntax(token, "a field name (letters, digits and _)")
        return token.text

    def function(self, name: Token) -> Filter:
        if name.text not in _FUNCTIONS:
            raise _error(f"unknown function {name.text}() at position {name.pos + 1}")
        self.count(name)
        self.take()  # (
        if name.text in ("has_device", "in_segment"):
            arg = self.expect("string", f"a quoted id in {name.text}()")
            self.expect(")", "')'")
            ident = unquote(arg.text).strip().lower()
            if not ident:
                raise _error(f"{name.text}() at position {name.pos + 1} needs an id")
            return HasDevice(ident) if name.text == "has_device" else InSegment(ident)
        field = self.field(self.take())
        self.expect(",", f"',' after the field of {name.text}()")
        arg = self.expect("string", f"a quoted text as the second argument of {name.text}()")
        self.expect(")", "')'")
        self.check_type(field, "eq", unquote(arg.text), arg)
        return TextMatch(name.text, field, self.normalise(field, unquote(arg.text)))  # type: ignore[arg-type]

    def comparison(self, name: Token) -> Filter:
        field = self.field(name)
        self.count(name)
        op = self.take()
        if op.kind == "word" and op.text == "in":
            return self.membership(field)
        if op.kind != "word" or op.text not in ("eq", "ne", "gt", "ge", "lt", "le"):
            raise self.syntax(op, f"an operator (eq ne gt ge lt le in) after {field}")
        token = self.peek()
        value = self.value()
        if op.text in _ORDERING and (value is None or isinstance(value, bool)):
            raise _error(f"{op.text} at position {op.pos + 1} compares with "
                         f"{token.text}: only numbers, text and date-times are ordered",
                         fix="Use eq or ne with true, false and null.")
        value = self.check_type(field, op.text, value, token)
        return Compare(field, op.text, self.normalise(field, value))  # type: ignore[arg-type]

    def membership(self, field: str) -> Filter:
        self.expect("(", f"'(' after {field} in")
        values: list[Value] = []
        while True:
            token = self.peek()
            values.append(self.normalise(field, self.check_type(field, "eq", self.value(),
                                                                token)))
            if len(values) > MAX_IN_VALUES:
                raise _error(f"in (...) at position {token.pos + 1} has more than "
                             f"{MAX_IN_VALUES} values", fix="Use a static segment instead.")
            sep = self.take()
            if sep.kind == ")":
                return In(field, tuple(values))
            if sep.kind != ",":
                raise self.syntax(sep, "',' or ')'")

    def value(self) -> Value:
        token = self.take()
        if token.kind == "string":
            return unquote(token.text)
        if token.kind == "word":
            if token.text == "null":
                return None
            if token.text in ("true", "false"):
                return token.text == "true"
            if _NUMBER.match(token.text):
                number = float(token.text)
                if not math.isfinite(number):
                    raise _error(f"the number {token.text} at position {token.pos + 1} is "
                                 "out of range")
                if re.fullmatch(r"[+-]?[0-9]+", token.text):
                    return int(token.text)
                return number
        raise self.syntax(token, "a value ('text', a number, true, false or null)")

    def check_type(self, field: str, op: str, value: Value, token: Token) -> Value:
        """Person columns have one type each: comparing one with another type is an error
        here (always false otherwise, which is never what was meant)."""
        if field not in PERSON_FIELDS or value is None:
            return value
        if field == "created_at":
            when = parse_datetime(value) if isinstance(value, str) else None
            if when is None:
                raise _error(f"created_at compares with an ISO 8601 date-time such as "
                             f"'2026-01-31T12:00:00Z', not {token.text} (position "
                             f"{token.pos + 1})")
            return when
        if not isinstance(value, str):
            raise _error(f"{field} is text: compare it with a 'quoted value', not "
                         f"{token.text} (position {token.pos + 1})")
        return value

    @staticmethod
    def normalise(field: str, value: Value) -> Value:
        # Emails are stored lower-cased; compare them as stored.
        return value.lower() if field == "email" and isinstance(value, str) else value


def parse(text: str) -> Filter:
    """The AST of a filter; ``FilterError`` (400) names the position of any problem."""
    if len(text) > MAX_FILTER_LENGTH:
        raise _error(f"the filter is longer than {MAX_FILTER_LENGTH} characters",
                     fix="Split it into segments and combine them with in_segment().")
    if "\x00" in text:
        raise _error("the filter contains a NUL character", fix="Remove it.")
    return _Parser(text).parse()


def _conditions(node: Filter) -> Iterator[Filter]:
    """The conditions ``node`` combines with not, and, or."""
    if isinstance(node, Not):
        yield from _conditions(node.item)
    elif isinstance(node, And | Or):
        for item in node.items:
            yield from _conditions(item)
    else:
        yield node


def segment_refs(node: Filter) -> set[str]:
    """The segment ids ``node`` refers to with ``in_segment()``."""
    return {c.segment_id for c in _conditions(node) if isinstance(c, InSegment)}


def app_refs(node: Filter) -> set[str]:
    """The app ids ``node`` refers to with ``has_device()``."""
    return {c.app_id for c in _conditions(node) if isinstance(c, HasDevice)}
