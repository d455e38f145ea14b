from __future__ import annotations

import copy
from typing import Any

import pytest

from clarion.domain.push_messages import (
    CompiledMessage,
    PersonFacts,
    parse_push_message,
    personalise,
    stored,
)
from clarion.domain.templates import TemplateInvalid
from clarion.errors import InvalidInput

pytestmark = pytest.mark.unit

# The issue's document, exactly as written there (the contract).
WELCOME: dict[str, Any] = {
    "name": "Welcome", "app_id": "<app id>", "category": "commercial",
    "title": "Welcome, {{FirstName}}",
    "body": "{{#if Tier}}Your {{Tier}} perks are ready{{else}}Glad you are here{{/if}}",
    "image_url": "https://contoso.example/img/welcome-2x1.png",
    "on_click": {"action": "open_url", "url": "https://contoso.example/welcome"},
    "data": {"campaign": "welcome"},
    "placeholders": {"FirstName": {"source": "audience", "field": "first_name",
                                   "default": "there"},
                     "Tier": {"source": "audience", "field": "tier"}}}

ANN = PersonFacts(id="p1", first_name="Ann", attributes={"tier": "gold"})
BOB = PersonFacts(id="p2", first_name=None, attributes={})


def _doc(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(WELCOME)
    doc.update(changes)
    return doc


def test_the_issue_document_is_valid_and_personalised() -> None:
    doc = parse_push_message(WELCOME)
    ann = personalise(doc, ANN, {}, {})
    assert (ann.title, ann.body) == ("Welcome, Ann", "Your gold perks are ready")
    assert ann.link == "https://contoso.example/welcome"
    assert ann.image_url == WELCOME["image_url"]
    assert ann.data == {"campaign": "welcome"}
    bob = personalise(doc, BOB, {}, {})
    assert (bob.title, bob.body) == ("Welcome, there", "Glad you are here")


def test_a_stored_document_reads_back_the_same() -> None:
    doc = parse_push_message(WELCOME)
    again = stored(doc.model_dump())
    assert again == doc
    assert CompiledMessage.of(again).render(ANN, {}, {}) == personalise(doc, ANN, {}, {})


def test_sources_trigger_and_org() -> None:
    doc = parse_push_message(_doc(
        title="{{City}}: {{Phone}}", body="{{Total}} {{Email}} {{Kind}}", placeholders={
            "City": {"source": "trigger", "field": "city", "default": "near you"},
            "Phone": {"source": "org", "field": "support_phone"},
            "Total": {"source": "trigger", "field": "cart_total"},
            "Email": {"source": "audience", "field": "email"},
            "Kind": {"source": "audience", "field": "kind"}}))
    person = PersonFacts(id="p", email="a@contoso.example", kind="lead")
    m = personalise(doc, person, {"cart_total": 52.0}, {"support_phone": "+1 555"})
    assert (m.title, m.body) == ("near you: +1 555", "52 a@contoso.example lead")


def test_placeholders_in_data_and_url_and_url_values_are_encoded() -> None:
    doc = parse_push_message(_doc(
        on_click={"action": "open_url",
                  "url": "https://contoso.example/o/{{Offer}}?n={{FirstName}}"},
        data={"campaign": "{{FirstName}}-x"},
        placeholders={**WELCOME["placeholders"],
                      "Offer": {"source": "trigger", "field": "offer"}}))
    m = personalise(doc, PersonFacts(id="p", first_name="A&B"), {"offer": "../x y"}, {})
    assert m.link == "https://contoso.example/o/..%2Fx%20y?n=A%26B"
    assert m.data == {"campaign": "A&B-x"}


def test_open_app_has_no_link() -> None:
    doc = parse_push_message(_doc(on_click={"action": "open_app"}))
    assert personalise(doc, ANN, {}, {}).link is None


@pytest.mark.parametrize(("changes", "field"), [
    ({"title": "Hi {{Nobody}}"}, "title"),
    ({"subtitle": "{{#if Tier}}x"}, "subtitle"),
    ({"body": "{{ FirstName.upper() }}"}, "body"),
    ({"data": {"k": "{{Nope}}"}}, "data.k"),
    ({"on_click": {"action": "open_url", "url": "https://c.example/{{Nope}}"}},
     "on_click.url"),
])
def test_template_errors_name_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(TemplateInvalid) as caught:
        parse_push_message(_doc(**changes))
    assert caught.value.field == field
    assert "line 1, column" in caught.value.message


@pytest.mark.parametrize(("changes", "field"), [
    ({"image_url": "http://contoso.example/a.png"}, "image_url"),
    ({"on_click": {"action": "open_url"}}, "on_click.url"),
    ({"on_click": {"action": "open_app", "url": "https://c.example"}}, "on_click.url"),
    ({"on_click": {"action": "open_url", "url": "javascript:alert(1)"}}, "on_click.url"),
    ({"on_click": {"action": "open_url", "url": "{{FirstName}}://x"}}, "on_click.url"),
    ({"on_click": {"action": "open_url", "url": "https://{{FirstName}}.example/"}},
     "on_click.url"),
    ({"data": {"trackingId": "x"}}, "data"),
    ({"title": "", "body": ""}, "body"),
    ({"placeholders": {"first.name": {"source": "audience", "field": "first_name"}}},
     "placeholders.first.name"),
])
def test_invalid_documents_are_refused_with_the_field(changes: dict[str, Any],
                                                      field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_push_message(_doc(**changes))
    assert caught.value.field == field


@pytest.mark.parametrize("changes", [
    {"category": "promo"}, {"priority": "urgent"}, {"ttl": -1}, {"ttl": "60"},
    {"placeholders": {"A": {"source": "crm", "field": "x"}}}, {"colour": "red"},
])
def test_wrong_values_are_invalid_input(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        parse_push_message(_doc(**changes))


def test_an_attribute_named_like_nothing_known_is_empty_or_default() -> None:
    doc = parse_push_message(_doc(body="[{{Tier}}]"))
    assert personalise(doc, BOB, {}, {}).body == "[]"


def test_person_facts_as_one_mapping() -> None:
    facts = PersonFacts(id="p", first_name="Ann", attributes={"tier": "gold",
                                                             "first_name": "shadowed"})
    got = facts.as_mapping()
    assert (got["first_name"], got["tier"], got["id"], got["email"]) == ("Ann", "gold", "p",
                                                                         None)
