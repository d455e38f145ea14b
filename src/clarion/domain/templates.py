"""Message templates as CIJ writes them, rendered by Jinja2's sandbox.

The language is CIJ's, and nothing more: ``{{Name}}`` inserts a placeholder's value, and
``{{#if A}}…{{else if B}}…{{else}}…{{/if}}`` (nestable) keeps one branch, ``A`` being true
when its value is present (not empty, not null, not false). Everything else is text, including
a lone ``{`` and any Jinja syntax (``{% … %}``, ``{# … #}``), which is shown as written.

Why our own scanner in front of Jinja: it is what lets a mistake be reported at save time with
its field, line and column, and what makes ``{{ a.b }}``, ``{{ a() }}`` or ``{{ x | f }}``
impossible rather than merely sandboxed. The scanner emits Jinja source in which every literal
``{`` is the constant expression ``{{ "{" }}`` (only ``{`` starts a Jinja tag) and every
placeholder is the variable ``v_<Name>`` (no clash with Jinja keywords such as ``true``); that
source is compiled once by an ``ImmutableSandboxedEnvironment`` with no filters, no globals and
one test (``present``), autoescape off. An undefined name renders empty; output is streamed and
cut off with an error past ``MAX_OUTPUT_CHARS`` (values are person attributes: the output of a
short template can still be long).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from jinja2 import Template, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from clarion.errors import InvalidInput

MAX_OUTPUT_CHARS = 8 * 1024  # per rendered field
MAX_TEMPLATE_CHARS = 8 * 1024
MAX_NESTING = 16
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_TAG = re.compile(r"\{\{(.*?)\}\}", re.S)
_IF = re.compile(r"#if\s+(\S.*)", re.S)
_ELSE_IF = re.compile(r"else\s+if\s+(\S.*)", re.S)


class TemplateInvalid(InvalidInput):
    """A template that cannot be saved: ``field`` names it, ``line``/``column`` (1-based) the
    spot."""

    def __init__(self, message: str, *, field: str, line: int, column: int, fix: str) -> None:
        super().__init__(f"{message} at line {line}, column {column}", field=field, fix=fix)
        self.line = line
        self.column = column


class TemplateOutputTooLarge(InvalidInput):
    """A rendering longer than ``MAX_OUTPUT_CHARS`` (long values put into the template)."""


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["text", "var", "if", "elif", "else", "endif"]
    value: str  # the text, or the placeholder's name
    offset: int


def position(source: str, offset: int) -> tuple[int, int]:
    """(line, column), both 1-based, of ``offset`` in ``source``."""
    line = source.count("\n", 0, offset) + 1
    return line, offset - (source.rfind("\n", 0, offset) + 1) + 1


def _fail(source: str, offset: int, field: str, message: str, fix: str) -> TemplateInvalid:
    line, column = position(source, offset)
    return TemplateInvalid(message, field=field, line=line, column=column, fix=fix)


_SYNTAX = ("Placeholders are written {{Name}}; conditions {{#if Name}}…{{else if Other}}…"
           "{{else}}…{{/if}}. Names are letters, digits and _; no dots, calls or filters.")


def _name(text: str, source: str, offset: int, field: str,
          known: Collection[str] | None) -> str:
    name = text.strip()
    if not NAME.fullmatch(name):
        raise _fail(source, offset, field, f"{{{{{text}}}}} is not a placeholder", _SYNTAX)
    if known is not None and name not in known:
        declared = ", ".join(sorted(known)) or "none"
        raise _fail(source, offset, field, f"unknown placeholder {name!r}",
                    f"Declare {name} under placeholders (declared: {declared}), or fix its "
                    "spelling (names are case-sensitive).")
    return name


def _tokens(source: str, field: str, known: Collection[str] | None) -> Iterator[_Token]:
    at = 0
    for tag in _TAG.finditer(source):
        if tag.start() > at:
            yield _Token("text", source[at:tag.start()], at)
        inner, offset = tag.group(1), tag.start()
        word = inner.strip()
        if (m := _IF.fullmatch(word)) is not None:
            yield _Token("if", _name(m.group(1), source, offset, field, known), offset)
        elif (m := _ELSE_IF.fullmatch(word)) is not None:
            yield _Token("elif", _name(m.group(1), source, offset, field, known), offset)
        elif word == "else":
            yield _Token("else", "", offset)
        elif word == "/if":
            yield _Token("endif", "", offset)
        else:
            yield _Token("var", _name(inner, source, offset, field, known), offset)
        at = tag.end()
    if at < len(source):
        yield _Token("text", source[at:], at)


def _check_unclosed(source: str, field: str) -> None:
    """A ``{{`` without its ``}}`` would be shown as text: almost surely a typo. (Tags are
    matched leftmost first, so only the text after the last one can hold such a ``{{``.)"""
    ends = [tag.end() for tag in _TAG.finditer(source)]
    at = source.find("{{", ends[-1] if ends else 0)
    if at >= 0:
        raise _fail(source, at, field, "'{{' is not closed by '}}'", _SYNTAX)


def translate(source: str, *, field: str = "template",
              known: Collection[str] | None = None) -> tuple[str, frozenset[str]]:
    """The Jinja source of a CIJ template and the placeholder names it uses; raises
    ``TemplateInvalid`` (syntax, or a name not in ``known`` when given)."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateInvalid(f"the template is {len(source)} characters, over "
                              f"{MAX_TEMPLATE_CHARS}", field=field, line=1, column=1,
                              fix="Shorten it.")
    _check_unclosed(source, field)
    out: list[str] = []
    names: set[str] = set()
    # Per open {{#if}}: (its offset, whether its {{else}} was seen).
    stack: list[tuple[int, bool]] = []
    for tok in _tokens(source, field, known):
        if tok.kind == "text":
            out.append(tok.value.replace("{", '{{ "{" }}'))
        elif tok.kind == "var":
            names.add(tok.value)
            out.append(f"{{{{ v_{tok.value} }}}}")
        elif tok.kind == "if":
            if len(stack) >= MAX_NESTING:
                raise _fail(source, tok.offset, field, f"more than {MAX_NESTING} nested "
                            "{{#if}}", "Simplify the conditions.")
            stack.append((tok.offset, False))
            names.add(tok.value)
            out.append(f"{{% if v_{tok.value} is present %}}")
        elif tok.kind in ("elif", "else"):
            if not stack:
                word = "{{else}}" if tok.kind == "else" else "{{else if}}"
                raise _fail(source, tok.offset, field, f"{word} outside {{{{#if}}}}", _SYNTAX)
            if stack[-1][1]:
                raise _fail(source, tok.offset, field, "a branch after {{else}}",
                            "{{else}} is the last branch of its {{#if}}.")
            if tok.kind == "else":
                stack[-1] = (stack[-1][0], True)
                out.append("{% else %}")
            else:
                names.add(tok.value)
                out.append(f"{{% elif v_{tok.value} is present %}}")
        else:
            if not stack:
                raise _fail(source, tok.offset, field, "{{/if}} without {{#if}}", _SYNTAX)
            stack.pop()
            out.append("{% endif %}")
    if stack:
        raise _fail(source, stack[-1][0], field, "{{#if}} is not closed by {{/if}}", _SYNTAX)
    return "".join(out), frozenset(names)


def _present(value: object) -> bool:
    return not (value is None or value is False or value == "" or isinstance(value, Undefined))


def _shown(value: object) -> object:
    """How a value reads in a message: booleans as JSON writes them, whole floats without
    ``.0``, null as nothing."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(autoescape=False, keep_trailing_newline=True,
                                        finalize=_shown, undefined=Undefined,
                                        auto_reload=False, cache_size=0)
    env.filters = {}
    env.tests = {"present": _present}
    env.globals = {}
    return env


_ENV = _environment()


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    source: str
    names: frozenset[str]  # the placeholders it uses
    _template: Template | None  # None: no placeholder, the source is the output

    def render(self, values: Mapping[str, object], *, field: str = "template") -> str:
        if self._template is None:
            return self.source
        context = {f"v_{n}": values.get(n) for n in self.names}
        size = 0
        parts: list[str] = []
        for part in self._template.generate(context):
            size += len(part)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateOutputTooLarge(
                    f"the rendered {field} is over {MAX_OUTPUT_CHARS} characters", field=field,
                    fix="Shorten the template or the values it inserts.")
            parts.append(part)
        return "".join(parts)


def compile_template(source: str, *, field: str = "template",
                     known: Collection[str] | None = None) -> CompiledTemplate:
    """Check and compile a CIJ template (``TemplateInvalid`` names the field and position)."""
    if "{{" not in source:
        if len(source) > MAX_TEMPLATE_CHARS:
            translate(source, field=field)  # raises
        return CompiledTemplate(source, frozenset(), None)
    jinja, names = translate(source, field=field, known=known)
    return CompiledTemplate(source, names, _ENV.from_string(jinja))


@lru_cache(maxsize=1024)
def cached_template(source: str) -> CompiledTemplate:
    """A template compiled once per process (for templates validated when saved)."""
    return compile_template(source)


def render(template: str, values: Mapping[str, object]) -> str:
    """Render a CIJ template with placeholder values (compiled templates are cached)."""
    return cached_template(template).render(values)
