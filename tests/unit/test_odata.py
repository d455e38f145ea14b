"""The OData subset parser: what it accepts, the AST it builds, and every shape it refuses."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.domain.odata import (
    MAX_COMPARISONS,
    And,
    Eq,
    ODataError,
    Or,
    context,
    parse_filter,
    parse_select,
    parse_top,
    query_options,
)

pytestmark = pytest.mark.unit

GUID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


def test_the_documented_lookup() -> None:
    assert parse_filter("emailaddress1 eq 'a@b.com'", "contacts") == Eq("emailaddress1", "a@b.com")


def test_and_binds_tighter_than_or() -> None:
    node = parse_filter("firstname eq 'a' or lastname eq 'b' and mobilephone eq 'c'", "contacts")
    assert node == Or((Eq("firstname", "a"),
                       And((Eq("lastname", "b"), Eq("mobilephone", "c")))))
    node = parse_filter("firstname eq 'a' and lastname eq 'b' or mobilephone eq 'c'", "contacts")
    assert node == Or((And((Eq("firstname", "a"), Eq("lastname", "b"))),
                       Eq("mobilephone", "c")))


def test_parentheses_override_precedence() -> None:
    node = parse_filter("(firstname eq 'a' or lastname eq 'b') and mobilephone eq 'c'",
                        "contacts")
    assert node == And((Or((Eq("firstname", "a"), Eq("lastname", "b"))),
                        Eq("mobilephone", "c")))
    assert parse_filter("((emailaddress1 eq 'x'))", "contacts") == Eq("emailaddress1", "x")


def test_chains_are_flat() -> None:
    node = parse_filter(" or ".join(f"emailaddress1 eq '{i}@x.com'" for i in range(5)),
                        "contacts")
    assert isinstance(node, Or)
    assert len(node.items) == 5


def test_string_literals_unescape_doubled_quotes() -> None:
    assert parse_filter("lastname eq 'O''Brien'", "contacts") == Eq("lastname", "O'Brien")
    assert parse_filter("lastname eq ''''", "contacts") == Eq("lastname", "'")
    assert parse_filter("lastname eq ''", "contacts") == Eq("lastname", "")
    assert parse_filter("lastname eq 'a and b or (c)'", "contacts") == Eq("lastname",
                                                                            "a and b or (c)")


def test_null_and_guids() -> None:
    assert parse_filter("mobilephone eq null", "contacts") == Eq("mobilephone", None)
    assert parse_filter(f"contactid eq {GUID.upper()}", "contacts") == Eq("contactid", GUID)
    assert parse_filter(f"contactid eq '{GUID}'", "contacts") == Eq("contactid", GUID)
    assert parse_filter(f"leadid eq {GUID}", "leads") == Eq("leadid", GUID)


def refused(text: str, entity: str = "contacts") -> str:
    with pytest.raises(ODataError) as err:
        parse_filter(text, entity)  # type: ignore[arg-type]
    assert err.value.code == "0x80060888"
    return str(err.value)


@pytest.mark.parametrize(("text", "names"), [
    ("emailaddress1 ne 'a@b.com'", "'ne'"),
    ("emailaddress1 gt 'a'", "'gt'"),
    ("emailaddress1 ge 'a'", "'ge'"),
    ("emailaddress1 lt 'a'", "'lt'"),
    ("emailaddress1 le 'a'", "'le'"),
    ("emailaddress1 in ('a','b')", "'in'"),
    ("emailaddress1 has 'a'", "'has'"),
    ("contains(emailaddress1,'a')", "contains()"),
    ("startswith(lastname,'a')", "startswith()"),
    ("tolower(emailaddress1) eq 'a'", "tolower()"),
    ("not emailaddress1 eq 'a'", "'not'"),
    ("not(emailaddress1 eq 'a')", "'not'"),
    ("telephone1 eq '1'", "'telephone1'"),
    ("EmailAddress1 eq 'a'", "'EmailAddress1'"),
    ("leadid eq '" + GUID + "'", "'leadid'"),
    ("parentcustomerid/name eq 'x'", "navigation"),
    ("emailaddress1 eq 5", "5"),
    ("emailaddress1 eq true", "true"),
    ("emailaddress1 eq lastname", "two fields"),
    ("emailaddress1 add 'x'", "'add'"),
    ("emailaddress1 eq 'a', lastname eq 'b'", "','"),
])
def test_unsupported_shapes_are_refused_naming_the_subset(text: str, names: str) -> None:
    message = refused(text)
    assert names in message
    assert "not supported by Clarion's OData subset" in message
    assert "emailaddress1, mobilephone, firstname, lastname" in message


@pytest.mark.parametrize(("text", "position"), [
    ("emailaddress1 eq 'a' and", 25),  # nothing after and: the end
    ("emailaddress1 'a'", 15),
    ("emailaddress1 eq", 17),
    ("(emailaddress1 eq 'a'", 22),
    ("emailaddress1 eq 'a')", 21),
    ("emailaddress1 eq 'a' lastname eq 'b'", 22),
    ("and emailaddress1 eq 'a'", 1),
    ("emailaddress1 eq 'unterminated", 18),
    ("emailaddress1 eq 'a' AND lastname eq 'b'", 22),
    ("emailaddress1 EQ 'a'", 15),
])
def test_syntax_errors_name_the_position(text: str, position: int) -> None:
    with pytest.raises(ODataError) as err:
        parse_filter(text, "contacts")
    assert f"position {position}" in err.value.message


def test_empty_filter() -> None:
    with pytest.raises(ODataError, match="empty"):
        parse_filter("   ", "contacts")


def test_a_bad_guid_is_refused() -> None:
    assert "not a GUID" in refused("contactid eq 'nope'")
    assert "not a GUID" in refused("contactid eq '3f2504e0'")


def test_nesting_and_size_are_bounded() -> None:
    deep = "(" * 40 + "emailaddress1 eq 'a'" + ")" * 40
    assert "deep" in refused(deep)
    many = " or ".join(["lastname eq 'a'"] * (MAX_COMPARISONS + 1))
    assert "comparisons" in refused(many)
    assert "longer" in refused("lastname eq '" + "a" * 20_000 + "'")
    ok = " or ".join(["lastname eq 'a'"] * MAX_COMPARISONS)
    assert isinstance(parse_filter(ok, "contacts"), Or)


def test_select() -> None:
    assert parse_select("emailaddress1", "contacts") == ("contactid", "emailaddress1")
    assert parse_select(" lastname , firstname,lastname", "leads") == ("leadid", "lastname",
                                                                        "firstname")
    assert parse_select("contactid", "contacts") == ("contactid",)
    assert parse_select("*", "contacts")[0] == "contactid"
    for bad in ("fullname", "emailaddress1,", "", "contactid", "emailaddress1/x"):
        with pytest.raises(ODataError):
            parse_select(bad, "leads")


def test_top() -> None:
    assert parse_top("1", "contacts") == 1
    assert parse_top("5000", "contacts") == 5000
    for bad in ("0", "5001", "-1", "ten", "1.5", ""):
        with pytest.raises(ODataError, match=r"\$top"):
            parse_top(bad, "contacts")


def test_query_options() -> None:
    assert query_options([("$filter", "x"), ("$top", "2")], "contacts") == {"$filter": "x",
                                                                            "$top": "2"}
    for key in ("$orderby", "$expand", "$skip", "$count", "$search", "$apply", "foo"):
        with pytest.raises(ODataError, match="not supported") as err:
            query_options([(key, "x")], "contacts")
        assert key in err.value.message
    with pytest.raises(ODataError, match="more than once"):
        query_options([("$top", "1"), ("$top", "2")], "contacts")


def test_context() -> None:
    assert context("https://push.example.com", "contacts", None) == (
        "https://push.example.com/api/data/v9.0/$metadata#contacts")
    assert context("http://h", "leads", ("leadid", "lastname")) == (
        "http://h/api/data/v9.0/$metadata#leads(leadid,lastname)")


PIECES = [*"()' ,/$eqandorlnulcotis0123456789-", "emailaddress1", " eq ", " and ", " or ",
          "'x'", "null", GUID]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30).map("".join))
def test_any_text_parses_or_is_a_400_never_a_crash(text: str) -> None:
    try:
        node = parse_filter(text, "contacts")
    except ODataError as err:
        message = err.message
        assert message
    else:
        assert isinstance(node, Eq | And | Or)
