"""The text rule (no NUL, no lone surrogate) and the JSON reader every body goes through."""

from __future__ import annotations

import pytest

from clarion.domain import text
from clarion.errors import InvalidInput

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("value", ["", "Ada", "émoji 😀", "\ufffe\uffff", "tab\there", "\u2028"])
def test_storable_text_passes(value: str) -> None:
    assert text.check_text(value, "name") == value


@pytest.mark.parametrize(("value", "shown"), [
    ("a\x00b", "U+0000 (NUL) at character 2"),
    ("a\ud800", "U+D800 (half of a surrogate pair, alone) at character 2"),
    ("\udfff", "U+DFFF (half of a surrogate pair, alone) at character 1"),
])
def test_nul_and_lone_surrogates_are_refused_naming_the_field(value: str, shown: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        text.check_text(value, "message.title")
    assert caught.value.field == "message.title"
    assert caught.value.message == f"message.title contains {shown}"


def test_a_body_with_nul_anywhere_is_refused_with_its_path() -> None:
    with pytest.raises(InvalidInput) as caught:
        text.loads(b'{"message": {"data": {"k": "v\\u0000"}}}')
    assert caught.value.field == "message.data.k"
    with pytest.raises(InvalidInput) as caught:
        text.loads(b'[{"UserId": "a"}, {"UserId": "b\\u0000"}]')
    assert caught.value.field == "[1].UserId"
    with pytest.raises(InvalidInput) as caught:
        text.loads(b'{"attributes": {"\\u0000key": 1}}')
    assert (caught.value.field, caught.value.message.split(" contains")[0]) == (
        "attributes", "a key of attributes")


def test_a_lone_surrogate_escape_is_refused_naming_its_field() -> None:
    # orjson refuses it by position; the error still names the field
    with pytest.raises(InvalidInput) as caught:
        text.loads(b'{"first_name": "Ada\\ud800"}')
    assert caught.value.field == "first_name"
    assert "U+D800" in caught.value.message
    # a pair is one character, and fine
    assert text.loads(b'{"first_name": "\\ud83d\\ude00"}') == {"first_name": "😀"}


def test_a_lone_surrogate_in_raw_bytes_is_refused_too() -> None:
    # not UTF-8 (RFC 3629 §3 excludes surrogates): orjson refuses it; it is named all the same
    with pytest.raises(InvalidInput) as caught:
        text.loads(b'{"a": "\xed\xa0\x80"}')
    assert caught.value.field == "a"


def test_syntax_errors_say_line_and_column() -> None:
    with pytest.raises(InvalidInput) as caught:
        text.loads(b'{"name": "a",\n "kind" "contact"}')
    assert caught.value.message.startswith("the request body is not valid JSON: ")
    assert caught.value.message.endswith("at line 2, column 9")


def test_nesting_is_bounded_without_recursion_errors() -> None:
    with pytest.raises(InvalidInput, match="depth limit exceeded"):
        text.loads(b"[" * 100_000)
    with pytest.raises(InvalidInput, match="depth limit exceeded"):
        text.loads("[" * 100_000 + '"\\ud800"')  # the surrogate fallback parser fails too


def test_text_without_escapes_is_not_walked() -> None:
    doc = text.loads(b'{"a": ["b", {"c": "d"}]}')
    assert doc == {"a": ["b", {"c": "d"}]}


@pytest.mark.parametrize("value", ["https://x.com/a\r\nSet-Cookie: a=b", "https://x.com/\x00",
                                   "https://x.com/\t", "https://x.com/\x7f", "https://x.com/\x85"])
def test_controls_are_refused_in_protocol_text(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        text.controls(value, "message.link")
    assert caught.value.field == "message.link"


def test_controls_pass_printable_text() -> None:
    assert text.controls("https://x.com/é?q=1 2", "u") == "https://x.com/é?q=1 2"


@pytest.mark.parametrize(("char", "shown"), [
    ("\x00", "U+0000 (NUL)"), ("\n", "U+000A (line feed)"),
    ("\x85", "U+0085 (a control character)"), ("\x7f", "U+007F (DEL)"), ("é", "U+00E9 ('é')"),
])
def test_characters_are_described_for_a_person(char: str, shown: str) -> None:
    assert text.describe(char) == shown
