"""The one rule for text that reaches the database, and the JSON reader every body goes through.

PostgreSQL's ``text`` and ``jsonb`` cannot hold U+0000 (NUL), and no UTF-8 encoder (asyncpg's,
sqlite3's) can write an unpaired surrogate (U+D800–U+DFFF), which is what a JSON ``"\\ud800"``
escape decodes to. Both reached the database and came back as 500s. The rule: **text Clarion
keeps holds neither** (every other Unicode scalar value is storable by both databases). It is
applied once, where input enters:

* every JSON body — the native API, the CIJ endpoints, JSON strings inside documents
  (``android.service_account``, ``x-ms-callback-url-headers``) — is read by ``loads``: orjson
  (nesting limited to 1,024 levels, so no ``RecursionError``; an unpaired surrogate escape is a
  syntax error), then every key and value at any depth is checked. JSON can carry a NUL only as
  a ``\\u`` escape, so the walk runs only for bodies that hold a backslash: free for the others;
* URL path and query parameters: by the API's request intake (``clarion.api.intake``);
* text that arrives another way (CLI files, CSV rows, headers) and that a domain parser keeps:
  ``check_text``.

``controls`` is a stricter rule for text that becomes part of a protocol element (a URL, a
header value): no C0 control, DEL or C1 control at all (RFC 3986 §2 has no raw controls in a
URI; RFC 9110 §5.5 allows only visible characters, space and tab in a field value).

Errors name the field with a JSON path (``message.title``, ``[3].UserId``) and the position.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from clarion.errors import InvalidInput

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_BODY = "the request body"
_JSON_FIX = ("Correct the JSON at the place named (a missing value, quote, comma or bracket, "
             "or one too many).")


def unstorable(value: str) -> int | None:
    """Index of the first character Clarion cannot store (NUL, unpaired surrogate), or None."""
    found = _UNSTORABLE.search(value)
    return None if found is None else found.start()


def describe(char: str) -> str:
    """A character for a person: ``U+0000 (NUL)``."""
    code = ord(char)
    if code == 0:
        return "U+0000 (NUL)"
    if 0xD800 <= code <= 0xDFFF:
        return f"U+{code:04X} (half of a surrogate pair, alone)"
    if code == 0x7F:
        return "U+007F (DEL)"
    names = {0x09: "tab", 0x0A: "line feed", 0x0D: "carriage return"}
    if code < 0x20 or 0x80 <= code <= 0x9F:
        return f"U+{code:04X} ({names.get(code, 'a control character')})"
    return f"U+{code:04X} ({char!r})"


def _refuse(field: str, what: str, value: str, at: int, fix: str) -> InvalidInput:
    return InvalidInput(f"{what} contains {describe(value[at])} at character {at + 1}",
                        fix=fix, field=field)


def check_text(value: str, field: str) -> str:
    """``value`` unchanged, or InvalidInput naming ``field`` if it holds unstorable text."""
    at = unstorable(value)
    if at is not None:
        raise _refuse(field, field, value, at,
                      "Remove the character: Clarion cannot store NUL or a lone surrogate "
                      "(text must be valid Unicode without U+0000).")
    return value


def controls(value: str, field: str, *, what: str | None = None) -> str:
    """``value`` unchanged, or InvalidInput if it holds a control character (C0, DEL, C1)."""
    found = _CONTROL.search(value)
    if found is not None:
        raise _refuse(field, what or field, value, found.start(),
                      "Remove the control character (line breaks, tabs and NUL included): a "
                      "URL or a header value cannot contain one.")
    return value


def _path(where: str, step: str | int) -> str:
    if isinstance(step, int):
        return f"{where}[{step}]"
    return f"{where}.{step}" if where else step


def check_document(value: Any, where: str = "") -> None:
    """Every key and string of a JSON document, at any depth, against ``check_text``."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:  # iterative: a parser already bounded the depth, this adds no recursion
        item, path = stack.pop()
        if isinstance(item, str):
            check_text(item, path or "body")
        elif isinstance(item, dict):
            for key, child in item.items():
                at = unstorable(key) if isinstance(key, str) else None
                if at is not None:
                    raise _refuse(path or "body", f"a key of {path or 'the body'}", key, at,
                                  "Remove the character from the key: Clarion cannot store NUL "
                                  "or a lone surrogate.")
                stack.append((child, _path(path, str(key))))
        elif isinstance(item, list):
            stack.extend((child, _path(path, i)) for i, child in enumerate(item))


def loads(raw: bytes | str, *, what: str = _BODY, fix: str = _JSON_FIX) -> Any:
    """A JSON document that holds only storable text, or InvalidInput.

    A syntax error says where: "the request body is not valid JSON: unexpected character at
    line 1, column 17". ``what`` names a JSON document held in a string (a header, a field),
    which is then the error's ``field``."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "surrogate" in exc.msg:
            _name_the_surrogate(raw, what)
        raise InvalidInput(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                           f"column {exc.colno}", fix=fix,
                           field=None if what == _BODY else what) from exc
    # JSON carries a NUL (or a surrogate) only as a \u escape: no backslash, nothing to walk.
    # (92 in bytes is a memchr, ~20 ns for a typical body; b"\\u" in bytes costs ~15 times more.)
    escaped = 92 in raw if isinstance(raw, bytes) else "\\" in raw
    if escaped:
        check_document(document, "" if what == _BODY else what)
    return document


def _name_the_surrogate(raw: bytes | str, what: str) -> None:
    """orjson refuses ``"\\ud800"`` by position; Python's own parser accepts it, so that the
    error can name the field. Nothing is raised when that parser fails too."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        return
    check_document(document, "" if what == _BODY else what)
