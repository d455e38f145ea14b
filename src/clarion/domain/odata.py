"""The OData subset CIJ token backends use to map an app user to a contact or lead.

CIJ's docs show backends calling Dataverse's Web API, e.g.
``GET {org}/api/data/v9.0/contacts?$filter=emailaddress1 eq 'a@b.com'``. Clarion answers the
small part of OData 4.0 (OASIS OData v4.0 Part 2, URL Conventions) such a lookup needs:

    filter     := or_expr
    or_expr    := and_expr ("or" and_expr)*          -- "and" binds tighter than "or" (§5.1.1.9)
    and_expr   := primary ("and" primary)*
    primary    := "(" or_expr ")" | FIELD "eq" value
    value      := STRING | "null" | GUID             -- STRING: '...', '' is a quote (§5.1.1.6.1)

plus ``$select`` (a comma list of fields) and ``$top``. Everything else is refused with a 400
that says what is supported, never silently ignored: a backend that relied on ``ne`` or
``contains()`` must learn it at once, not get the wrong people.

The parser is written by hand (recursive descent, on the core it shares with the segment filter
language, ``clarion.domain.filter_syntax``) on purpose: the OData packages on PyPI either bind
a full grammar to an ORM (we would have to fence them back down to eq/and/or, and every
operator they accept is one more thing to refuse by hand) or are unmaintained. A grammar this
small is easier to read, test and keep safe (bounded nesting and size, positions in every
error) than a dependency.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
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
from clarion.domain.text import check_text
from clarion.errors import InvalidInput

Entity = Literal["contacts", "leads"]
ID_FIELD: dict[Entity, str] = {"contacts": "contactid", "leads": "leadid"}
DATA_FIELDS = ("emailaddress1", "mobilephone", "firstname", "lastname")
DEFAULT_TOP = 1000
MAX_TOP = 5000
MAX_FILTER_LENGTH = 10_000
MAX_COMPARISONS = 250  # SQLite refuses expression trees deeper than 1000
MAX_DEPTH = 32
# The code Dataverse answers for a query it cannot run ("Could not find a property named ...").
ERROR_CODE = "0x80060888"


class ODataError(InvalidInput):
    code = ERROR_CODE


@dataclass(frozen=True, slots=True)
class Eq:
    field: str
    value: str | None  # None: the null literal


Node = Eq | And["Node"] | Or["Node"]


def fields_of(entity: Entity) -> tuple[str, ...]:
    return (ID_FIELD[entity], *DATA_FIELDS)


def supported(entity: Entity) -> str:
    return (f"supported are eq, and, or and parentheses on {', '.join(fields_of(entity))} "
            "(values: 'quoted strings', null, GUIDs), and the query options $filter, $select "
            f"and $top (1 to {MAX_TOP})")


def _refuse(entity: Entity, what: str) -> ODataError:
    return ODataError(f"{what} is not supported by Clarion's OData subset: {supported(entity)}",
                      fix="Rewrite the query with the supported subset only.")


_TOKEN = token_pattern(r"A-Za-z0-9_.:+\-/$@*", comma=False)  # a comma is an ``other``
_GUID = re.compile(r"^[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$")
_NUMBER = re.compile(r"^[+-]?[0-9][0-9.eE+\-]*[dDfFmMlL]?$")
_OPERATORS = {"ne", "gt", "ge", "lt", "le", "has", "in", "add", "sub", "mul", "div", "divby",
              "mod"}
_KEYWORDS = {"and", "or", "eq", "null", "not", *_OPERATORS}


class _Parser(ExpressionParser[Node]):
    max_depth = MAX_DEPTH
    max_comparisons = MAX_COMPARISONS

    def __init__(self, text: str, entity: Entity) -> None:
        super().__init__(tokenize(_TOKEN, text))
        self.entity = entity
        self.fields = fields_of(entity)

    def syntax(self, token: Token, expected: str) -> ODataError:
        if token.kind == "other":
            return _refuse(self.entity, f"the character {token.text!r} at position "
                           f"{token.pos + 1}")
        if token.kind == "unclosed":
            return ODataError(f"$filter: the string starting at position {token.pos + 1} is "
                              "not closed", fix="End it with ' (write '' for a quote inside).")
        found = "the end of the filter" if token.kind == "end" else repr(token.text)
        return ODataError(f"$filter syntax error at position {token.pos + 1}: expected "
                          f"{expected}, found {found}",
                          fix=f"Clarion's OData subset: {supported(self.entity)}.")

    def empty(self) -> ODataError:
        return ODataError("$filter is empty", fix="Give a filter such as "
                          "emailaddress1 eq 'a@b.com', or leave $filter out.")

    def too_deep(self, token: Token) -> ODataError:
        return ODataError(f"$filter nests parentheses more than {MAX_DEPTH} deep "
                          f"(position {token.pos + 1})", fix="Flatten the filter.")

    def too_many(self, token: Token) -> ODataError:
        return ODataError(f"$filter has more than {MAX_COMPARISONS} comparisons",
                          fix="Split the lookup into several requests.")

    def trailing(self, token: Token) -> InvalidInput:
        if token.kind == "word" and token.text.lower() in _KEYWORDS - {"and", "or"}:
            return _refuse(self.entity, f"{token.text!r} at position {token.pos + 1}")
        return super().trailing(token)

    def is_word(self, word: str) -> bool:
        token = self.peek()
        if token.kind == "word" and token.text.lower() == word and token.text != word:
            raise ODataError(f"$filter: {token.text!r} at position {token.pos + 1} must be "
                             f"written in lower case", fix=f"Write {word!r}.")
        return super().is_word(word)

    def operand(self, depth: int) -> Node:
        token = self.take()
        if token.kind == "(":
            return self.group(token, depth)
        if token.kind != "word":
            raise self.syntax(token, "a field name or '('")
        return self.comparison(token)

    def comparison(self, name: Token) -> Eq:
        at = f"at position {name.pos + 1}"
        if name.text.lower() == "not":
            raise _refuse(self.entity, f"'not' {at}")
        if self.peek().kind == "(":
            raise _refuse(self.entity, f"the function {name.text}() {at}")
        if "/" in name.text:
            raise _refuse(self.entity, f"the path {name.text!r} {at} (navigation or lambda)")
        if name.text in ("and", "or", "eq", "null"):
            raise self.syntax(name, "a field name or '('")
        if name.text not in self.fields:
            raise _refuse(self.entity, f"the field {name.text!r} {at}")
        op = self.take()
        if op.kind == "word" and op.text.lower() in _OPERATORS:
            raise _refuse(self.entity, f"the operator {op.text!r} at position {op.pos + 1}")
        if not (op.kind == "word" and op.text.lower() == "eq"):
            raise self.syntax(op, f"'eq' after {name.text}")
        if op.text != "eq":
            raise ODataError(f"$filter: {op.text!r} at position {op.pos + 1} must be written "
                             "in lower case", fix="Write 'eq'.")
        self.count(name)
        return Eq(name.text, self.value(name.text))

    def value(self, field: str) -> str | None:
        token = self.take()
        at = f"at position {token.pos + 1}"
        if token.kind == "string":
            text: str | None = check_text(unquote(token.text), "$filter")
        elif token.kind == "word" and token.text == "null":
            text = None
        elif token.kind == "word" and _GUID.match(token.text) and field == self.fields[0]:
            text = token.text
        elif token.kind == "word" and (_NUMBER.match(token.text)
                                       or token.text in ("true", "false")):
            raise _refuse(self.entity, f"the literal {token.text} {at} (only 'quoted strings', "
                          "null and GUIDs are)")
        elif token.kind == "word" and token.text in self.fields:
            raise _refuse(self.entity, f"comparing two fields {at}")
        else:
            raise self.syntax(token, f"a quoted value or null after {field} eq")
        if text is not None and field == self.fields[0]:
            try:
                text = str(uuid.UUID(text))
            except ValueError:
                raise ODataError(f"$filter: {token.text} {at} is not a GUID", field=field,
                                 fix=f"Compare {field} with a GUID such as "
                                 "3f2504e0-4f89-11d3-9a0c-0305e82c3301.") from None
        return text


def parse_filter(text: str, entity: Entity) -> Node:
    """The AST of a ``$filter`` value; ODataError (400) names the position of any problem."""
    if len(text) > MAX_FILTER_LENGTH:
        raise ODataError(f"$filter is longer than {MAX_FILTER_LENGTH} characters",
                         fix="Split the lookup into several requests.")
    return _Parser(text, entity).parse()


def parse_select(text: str, entity: Entity) -> tuple[str, ...]:
    """The fields to answer, the id field first (CIJ always returns it), in the order asked."""
    fields = fields_of(entity)
    names = [name.strip() for name in text.split(",")]
    if names == ["*"]:
        return fields
    out = [fields[0]]
    for name in names:
        if not name:
            raise ODataError("$select has an empty field name",
                             fix=f"List fields separated by commas, e.g. $select={fields[1]}.")
        if name not in fields:
            raise _refuse(entity, f"$select of {name!r}")
        if name not in out:
            out.append(name)
    return tuple(out)


def parse_top(text: str, entity: Entity) -> int:
    value = text.strip()
    if not value.isdigit() or not 1 <= int(value) <= MAX_TOP:
        raise _refuse(entity, f"$top={text!r}")
    return int(value)


def query_options(items: Iterable[tuple[str, str]], entity: Entity) -> dict[str, str]:
    """The ``$filter``/``$select``/``$top`` of a query string; any other option is refused."""
    out: dict[str, str] = {}
    for key, value in items:
        if key not in ("$filter", "$select", "$top"):
            what = f"the query option {key}" if key.startswith("$") else f"the parameter {key!r}"
            raise _refuse(entity, what)
        if key in out:
            raise ODataError(f"{key} is given more than once", fix=f"Give {key} once.")
        out[key] = value
    return out


def context(base_url: str, entity: Entity, select: tuple[str, ...] | None) -> str:
    """``@odata.context`` as Dataverse writes it (OData 4.0 JSON Format §10)."""
    suffix = f"({','.join(select)})" if select else ""
    return f"{base_url}/api/data/v9.0/$metadata#{entity}{suffix}"
