"""The segment filter language: the AST the parser builds, the errors naming positions, and the
in-memory evaluation journeys use."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clarion.domain import odata
from clarion.domain.filter_evaluation import evaluate, person_facts
from clarion.domain.filters import (
    And,
    Compare,
    FilterError,
    HasDevice,
    In,
    InSegment,
    Not,
    Or,
    TextMatch,
    parse,
    segment_refs,
)

pytestmark = pytest.mark.unit


def test_the_issue_example() -> None:
    assert parse("tier eq 'gold' or tier eq 'silver'") == Or(
        (Compare("tier", "eq", "gold"), Compare("tier", "eq", "silver")))


def test_every_operator_and_literal() -> None:
    assert parse("age ge 18 and score lt 2.5 and vip eq true and city ne null") == And((
        Compare("age", "ge", 18), Compare("score", "lt", 2.5), Compare("vip", "eq", True),
        Compare("city", "ne", None)))
    assert parse("not (a gt -3 or b le 'x')") == Not(Or((Compare("a", "gt", -3),
                                                          Compare("b", "le", "x"))))
    assert parse("not a eq 1 and b eq 2") == And((Not(Compare("a", "eq", 1)),
                                                  Compare("b", "eq", 2)))


def test_functions_and_in() -> None:
    assert parse("city in ('Paris', 'Lyon', 3)") == In("city", ("Paris", "Lyon", 3))
    assert parse("contains(first_name,'an') and startswith(email,'A') "
                 "and endswith(city, 'x')") == And((
                     TextMatch("contains", "first_name", "an"),
                     TextMatch("startswith", "email", "a"),
                     TextMatch("endswith", "city", "x")))
    node = parse("has_device('APP') or in_segment('s1')")
    assert node == Or((HasDevice("app"), InSegment("s1")))
    assert segment_refs(node) == {"s1"}


def test_created_at_takes_a_date_time() -> None:
    assert parse("created_at ge '2026-01-01'") == Compare(
        "created_at", "ge", datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(FilterError, match="ISO 8601"):
        parse("created_at ge 'yesterday'")


@pytest.mark.parametrize(("text", "position"), [
    ("tier eq", 8), ("tier 'gold'", 6), ("(tier eq 'a'", 13), ("tier eq 'a' tier", 13),
    ("tier eq 'gold", 9), ("frobnicate('x')", 1), ("tier gt null", 6), ("and eq 1", 1),
])
def test_errors_name_the_position(text: str, position: int) -> None:
    with pytest.raises(FilterError, match=f"position {position}"):
        parse(text)


def test_person_fields_are_text() -> None:
    with pytest.raises(FilterError, match="first_name is text"):
        parse("first_name eq 5")


def test_bounds() -> None:
    with pytest.raises(FilterError, match="empty"):
        parse("  ")
    with pytest.raises(FilterError, match="conditions"):
        parse(" or ".join(["a eq 1"] * 300))
    with pytest.raises(FilterError, match="nests"):
        parse("(" * 40 + "a eq 1" + ")" * 40)


def test_the_odata_subset_is_unchanged() -> None:
    # The CIJ lookup keeps refusing what segments accept.
    with pytest.raises(odata.ODataError, match="ne"):
        odata.parse_filter("emailaddress1 ne 'a'", "contacts")


FACTS = person_facts({"first_name": "Ana", "email": "ana@example.com", "kind": "contact"},
                     {"tier": "gold", "age": 30, "vip": True, "first_name": "shadowed"})


@pytest.mark.parametrize(("text", "expected"), [
    ("tier eq 'gold'", True), ("tier eq 'silver' or tier eq 'gold'", True),
    ("tier ne 'gold'", False), ("age gt 29.5", True), ("age eq '30'", False),
    ("age ne '30'", True), ("vip eq true", True), ("vip eq 1", False),
    ("city eq null", True), ("city ne null", False), ("not city ne null", True),
    ("tier gt 'f'", True), ("age lt 'zzz'", False), ("first_name eq 'Ana'", True),
    ("contains(first_name, 'n')", True), ("startswith(email, 'ANA')", True),
    ("endswith(tier, 'ld')", True), ("contains(age, '3')", False),
    ("tier in ('silver', 'gold')", True), ("has_device('a1')", True),
    ("has_device('a2')", False), ("in_segment('s')", True), ("in_segment('t')", False),
])
def test_evaluate(text: str, expected: bool) -> None:
    assert evaluate(parse(text), FACTS, device_apps={"a1"}, segments={"s"}) is expected


def test_trigger_data_wins_in_a_trigger_context() -> None:
    facts = person_facts({}, {"cart_total": 1}, {"cart_total": 80})
    assert evaluate(parse("cart_total gt 50"), facts)


@given(st.dictionaries(st.sampled_from(["a", "b"]),
                       st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text("xy"))),
       st.sampled_from(["a eq 1", "a ne 'x'", "a gt 0 and b le 'y'", "contains(a,'x')",
                        "a in (1, 'x', true)", "a eq null or b ne null"]))
def test_ne_is_not_eq_and_not_is_a_complement(facts: dict[str, object], text: str) -> None:
    node = parse(text)
    assert evaluate(Not(node), facts) is not evaluate(node, facts)
    if isinstance(node, Compare) and node.op == "ne":
        assert evaluate(node, facts) is not evaluate(Compare(node.field, "eq", node.value), facts)


def test_facts_of_a_stored_person() -> None:
    from clarion.domain.filter_evaluation import facts_of
    from clarion.domain.people import PersonRead

    when = datetime(2026, 3, 1, tzinfo=UTC)
    person = PersonRead(id="p", kind="lead", email="a@b.c", phone=None, first_name="Ana",
                        last_name=None, time_zone=None, locale=None,
                        attributes={"tier": "gold"}, created_at=when, updated_at=when)
    facts = facts_of(person, {"cart_total": 80})
    assert evaluate(parse("kind eq 'lead' and tier eq 'gold' and cart_total gt 50 and "
                          "created_at lt '2026-04-01' and last_name eq null"), facts)
