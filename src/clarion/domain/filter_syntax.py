"""The tokenizer and recursive-descent core shared by Clarion's two filter languages.

The OData subset (``clarion.domain.odata``) and the segment filter language
(``clarion.domain.filters``) read the same way: quoted text with ``''`` for a quote, words,
parentheses, ``or`` binding looser than ``and``, bounded nesting and a bounded number of
comparisons, and errors that name the position. Each language keeps its own grammar for what
stands between the ``and``/``or`` (``ExpressionParser.operand``) and its own error wording.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from clarion.errors import InvalidInput

N = TypeVar("N")
Connective = Literal["and", "or"]

_KINDS = {"lp": "(", "rp": ")", "comma": ","}


@dataclass(frozen=True, slots=True)
class And(Generic[N]):
    """Every one of ``items`` holds."""

    items: tuple[N, ...]


@dataclass(frozen=True, slots=True)
class Or(Generic[N]):
    """At least one of ``items`` holds."""

    items: tuple[N, ...]


def token_pattern(word: str, *, comma: bool) -> re.Pattern[str]:
    """The regex ``tokenize`` reads with: blanks, ``(``, ``)``, ``,`` (with ``comma``; else a
    comma is an ``other``), ``'quoted text'``, a word of the characters in ``word`` (a
    character-class body), a quote left open, and any other single character."""
    commas = r"|(?P<comma>,)" if comma else ""
    return re.compile(rf"(?P<ws>\s+)|(?P<lp>\()|(?P<rp>\)){commas}|(?P<string>'(?:[^']|'')*')"
                      rf"|(?P<word>[{word}]+)|(?P<unclosed>')|(?P<other>.)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # ( ) , string word unclosed other end
    text: str
    pos: int  # 0-based offset in the filter text


def tokenize(pattern: re.Pattern[str], text: str) -> list[Token]:
    """Every token up front, ending with an ``end`` token (nothing after an unclosed quote).
    A bad character becomes an ``other`` token, so that the parser reports it in context."""
    out: list[Token] = []
    for match in pattern.finditer(text):
        kind = match.lastgroup or "other"
        if kind == "ws":
            continue
        out.append(Token(_KINDS.get(kind, kind), match.group(), match.start()))
        if kind == "unclosed":
            break
    out.append(Token("end", "", len(text)))
    return out


def unquote(text: str) -> str:
    """The text of a ``'quoted'`` token."""
    return text[1:-1].replace("''", "'")


class ExpressionParser(ABC, Generic[N]):
    """``or_expr := and_expr ("or" and_expr)*``, ``and_expr := operand ("and" operand)*``
    over ``tokens``, two or more joined in an ``Or`` or ``And`` node; a subclass gives the
    operand (``N``: the language's node type, ``And[N]`` and ``Or[N]`` among them) and the
    errors."""

    max_depth: int  # of parentheses (and of ``not``, where the language has it)
    max_comparisons: int

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.comparisons = 0

    @abstractmethod
    def operand(self, depth: int) -> N:
        """What ``and`` joins."""

    @abstractmethod
    def syntax(self, token: Token, expected: str) -> InvalidInput:
        """The error for ``token`` where ``expected`` should stand."""

    @abstractmethod
    def empty(self) -> InvalidInput:
        """The error for a filter with no token."""

    @abstractmethod
    def too_deep(self, token: Token) -> InvalidInput:
        """The error for nesting past ``max_depth`` at ``token``."""

    @abstractmethod
    def too_many(self, token: Token) -> InvalidInput:
        """The error for more than ``max_comparisons`` comparisons (at ``token``)."""

    def trailing(self, token: Token) -> InvalidInput:
        """The error for ``token`` after a whole expression."""
        return self.syntax(token, "'and', 'or' or the end of the filter")

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        if token.kind != "end":  # the end token stays, so peek() is always safe
            self.i += 1
        return token

    def expect(self, kind: str, expected: str) -> Token:
        token = self.take()
        if token.kind != kind:
            raise self.syntax(token, expected)
        return token

    def is_word(self, word: str) -> bool:
        token = self.peek()
        return token.kind == "word" and token.text == word

    def count(self, token: Token) -> None:
        """One more comparison, at ``token``."""
        self.comparisons += 1
        if self.comparisons > self.max_comparisons:
            raise self.too_many(token)

    def deeper(self, token: Token, depth: int) -> int:
        """The depth inside the parenthesis or ``not`` at ``token``."""
        if depth >= self.max_depth:
            raise self.too_deep(token)
        return depth + 1

    def parse(self) -> N:
        if self.peek().kind == "end":
            raise self.empty()
        node = self.or_expr(0)
        token = self.peek()
        if token.kind != "end":
            raise self.trailing(token)
        return node

    def or_expr(self, depth: int) -> N:
        return self._joined("or", self.and_expr, depth)

    def and_expr(self, depth: int) -> N:
        return self._joined("and", self.operand, depth)

    def group(self, opening: Token, depth: int) -> N:
        """The expression in parentheses after ``opening``, up to its ``)``."""
        node = self.or_expr(self.deeper(opening, depth))
        self.expect(")", "')'")
        return node

    def _joined(self, connective: Connective, part: Callable[[int], N], depth: int) -> N:
        items = [part(depth)]
        while self.is_word(connective):
            self.take()
            items.append(part(depth))
        if len(items) == 1:
            return items[0]
        # N, the language's node type, includes And[N] and Or[N].
        return Or(tuple(items)) if connective == "or" else And(tuple(items))  # type: ignore[return-value]
