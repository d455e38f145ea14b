from __future__ import annotations

import pytest

from clarion.domain.templates import (
    MAX_OUTPUT_CHARS,
    TemplateInvalid,
    TemplateOutputTooLarge,
    compile_template,
    render,
)

pytestmark = pytest.mark.unit

NESTED = ("{{#if A}}a{{#if B}}+b{{else}}-b{{/if}}"
          "{{else if C}}c{{#if D}}d{{else if E}}e{{/if}}"
          "{{else}}none{{/if}}")


def test_placeholders_are_replaced() -> None:
    assert render("Welcome, {{FirstName}}!", {"FirstName": "Ann"}) == "Welcome, Ann!"
    assert render("{{ FirstName }}", {"FirstName": "Ann"}) == "Ann"


def test_the_issue_example_body() -> None:
    body = "{{#if Tier}}Your {{Tier}} perks are ready{{else}}Glad you are here{{/if}}"
    assert render(body, {"Tier": "gold"}) == "Your gold perks are ready"
    assert render(body, {"Tier": ""}) == "Glad you are here"
    assert render(body, {}) == "Glad you are here"


@pytest.mark.parametrize(("values", "expected"), [
    ({"A": "1", "B": "1"}, "a+b"), ({"A": "1"}, "a-b"), ({"C": "1", "D": "x"}, "cd"),
    ({"C": "1", "E": "x"}, "ce"), ({"C": "1"}, "c"), ({}, "none"),
    ({"A": False, "C": True}, "c"), ({"A": None}, "none"), ({"A": 0}, "a-b"),
])
def test_nested_conditions(values: dict[str, object], expected: str) -> None:
    assert render(NESTED, values) == expected


def test_values_read_as_json_writes_them() -> None:
    assert render("{{A}} {{B}} {{C}} {{D}} {{E}}",
                  {"A": True, "B": 3.0, "C": 2.5, "D": None, "E": 7}) == "true 3 2.5  7"


def test_undefined_names_render_empty() -> None:
    assert render("[{{Missing}}]", {}) == "[]"


@pytest.mark.parametrize("text", [
    "{% for x in y %}x{% endfor %}", "{# comment #}", "a { b } c", "{ {x} }",
    "100% {%raw%}", "}} {",
])
def test_jinja_syntax_in_text_is_shown_as_written(text: str) -> None:
    assert render(text, {}) == text


def test_values_are_not_templates() -> None:
    assert render("{{A}}", {"A": "{{B}} {% if 1 %}x{% endif %}"}) == \
        "{{B}} {% if 1 %}x{% endif %}"


def test_no_escaping() -> None:
    assert render("{{A}}", {"A": "<b>&amp;</b>"}) == "<b>&amp;</b>"


@pytest.mark.parametrize(("source", "line", "column", "words"), [
    ("Hi {{ a.b }}", 1, 4, "is not a placeholder"),
    ("{{ a() }}", 1, 1, "is not a placeholder"),
    ("{{ a | upper }}", 1, 1, "is not a placeholder"),
    ("{{ a['b'] }}", 1, 1, "is not a placeholder"),
    ("{{ 1 + 1 }}", 1, 1, "is not a placeholder"),
    ("{{}}", 1, 1, "is not a placeholder"),
    ("x\n  {{#if A}}y", 2, 3, "not closed by {{/if}}"),
    ("{{/if}}", 1, 1, "without {{#if}}"),
    ("ok {{else}}", 1, 4, "outside {{#if}}"),
    ("{{else if A}}", 1, 1, "outside {{#if}}"),
    ("{{#if A}}1{{else}}2{{else}}3{{/if}}", 1, 20, "after {{else}}"),
    ("{{#if A}}1{{else}}2{{else if A}}3{{/if}}", 1, 20, "after {{else}}"),
    ("Hello {{A", 1, 7, "not closed by '}}'"),
    ("{{A}} and {{", 1, 11, "not closed by '}}'"),
    ("{{#if}}x{{/if}}", 1, 1, "is not a placeholder"),
    ("{{#if A.b}}x{{/if}}", 1, 1, "is not a placeholder"),
])
def test_syntax_errors_name_field_and_position(source: str, line: int, column: int,
                                               words: str) -> None:
    with pytest.raises(TemplateInvalid) as caught:
        compile_template(source, field="body", known={"A", "a"})
    err = caught.value
    assert (err.field, err.line, err.column) == ("body", line, column)
    assert words in err.message
    assert f"line {line}, column {column}" in err.message


def test_unknown_placeholders_are_named() -> None:
    with pytest.raises(TemplateInvalid) as caught:
        compile_template("Hi\n{{#if Tier}}{{Teir}}{{/if}}", field="title", known={"Tier"})
    assert "'Teir'" in caught.value.message
    assert (caught.value.line, caught.value.column) == (2, 13)
    assert "Tier" in caught.value.fix


def test_names_used_are_reported() -> None:
    assert compile_template(NESTED).names == {"A", "B", "C", "D", "E"}
    assert compile_template("plain").names == frozenset()


def test_deep_nesting_is_bounded() -> None:
    source = "{{#if A}}" * 17 + "x" + "{{/if}}" * 17
    with pytest.raises(TemplateInvalid, match="nested"):
        compile_template(source)
    assert render("{{#if A}}" * 16 + "x" + "{{/if}}" * 16, {"A": "y"}) == "x"


def test_huge_output_is_an_error() -> None:
    template = compile_template("{{A}}{{A}}{{A}}")
    assert template.render({"A": "x" * 2000}) == "x" * 6000
    with pytest.raises(TemplateOutputTooLarge):
        template.render({"A": "x" * (MAX_OUTPUT_CHARS // 2)}, field="body")


def test_huge_templates_are_refused() -> None:
    with pytest.raises(TemplateInvalid, match="over"):
        compile_template("x" * (MAX_OUTPUT_CHARS + 1))
