"""Reading import files into rows, and rows into person fields (no database)."""

from __future__ import annotations

import io

import pytest

from clarion.errors import InvalidInput
from clarion.services.importing import (
    UnreadableRow,
    iter_csv,
    iter_jsonl,
    row_to_data,
)

pytestmark = pytest.mark.unit

GUID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


def test_csv_rows_carry_their_line_and_drop_empty_cells() -> None:
    text = ("type,email,first_name,Tier,Loyalty Points\n"
            "lead,ada@example.com,Ada,gold,\n"
            ",bob@example.com,,  ,12\n")
    rows = list(iter_csv(io.StringIO(text)))
    assert rows == [
        (2, {"type": "lead", "email": "ada@example.com", "first_name": "Ada", "Tier": "gold"}),
        (3, {"email": "bob@example.com", "Loyalty Points": "12"}),
    ]


def test_csv_line_numbers_count_physical_lines() -> None:
    text = 'email,note\na@x.com,"two\nlines"\n\nb@x.com,x\n'
    assert [line for line, _ in iter_csv(io.StringIO(text))] == [3, 5]


def test_csv_rows_with_too_many_cells_are_unreadable() -> None:
    rows = list(iter_csv(io.StringIO("email\na@x.com,surprise\nb@x.com,\n")))
    assert isinstance(rows[0][1], UnreadableRow)
    assert "more cell" in rows[0][1].reason
    assert rows[1] == (3, {"email": "b@x.com"})


def test_a_csv_header_naming_a_column_twice_is_refused() -> None:
    with pytest.raises(InvalidInput, match="twice"):
        list(iter_csv(io.StringIO("email,Email\na,b\n")))


def test_jsonl_rows_skip_blank_lines_and_report_bad_json() -> None:
    text = ('{"type": "profile", "id": "' + GUID + '", "vip": true}\n'
            "\n"
            "{not json}\n"
            "[1, 2]\n"
            '{"emailaddress1": "a@x.com"}\n')
    rows = list(iter_jsonl(io.StringIO(text)))
    assert rows[0] == (1, {"type": "profile", "id": GUID, "vip": True})
    assert rows[1][0] == 3
    assert isinstance(rows[1][1], UnreadableRow)
    assert "not valid JSON" in rows[1][1].reason
    assert rows[2][0] == 4
    assert "expected a JSON object" in rows[2][1].reason
    assert rows[3] == (5, {"emailaddress1": "a@x.com"})


def test_leading_blank_lines_keep_line_numbers_right() -> None:
    rows = list(iter_jsonl(io.StringIO('\n  \n{"email": "a@x.com"}\n{"email": "b@x.com"}\n')))
    assert rows == [(3, {"email": "a@x.com"}), (4, {"email": "b@x.com"})]


def test_a_json_array_is_read_too() -> None:
    rows = list(iter_jsonl(io.StringIO('  [{"email": "a@x.com"}, {"email": "b@x.com"}]')))
    assert rows == [(1, {"email": "a@x.com"}), (2, {"email": "b@x.com"})]


def test_known_columns_map_to_fields_and_the_rest_to_attributes() -> None:
    data = row_to_data({"Type": "lead", "EmailAddress1": "a@x.com", "mobilephone": "+33612345678",
                        "firstname": "Ada", "LastName": "Lovelace", "timezone": "Europe/London",
                        "locale": "en-GB", "contactid": GUID, "Tier": "gold", "visits": 3})
    assert data == {"kind": "lead", "email": "a@x.com", "phone": "+33612345678",
                    "first_name": "Ada", "last_name": "Lovelace", "time_zone": "Europe/London",
                    "locale": "en-GB", "id": GUID, "attributes": {"Tier": "gold", "visits": 3}}


def test_a_json_attributes_object_is_merged() -> None:
    data = row_to_data({"email": "a@x.com", "attributes": {"tier": "gold"}, "city": "Paris"})
    assert data["attributes"] == {"tier": "gold", "city": "Paris"}


def test_disagreeing_aliases_and_empty_rows_are_refused() -> None:
    with pytest.raises(InvalidInput, match="disagree"):
        row_to_data({"email": "a@x.com", "emailaddress1": "b@x.com"})
    assert row_to_data({"email": "a@x.com", "emailaddress1": "a@x.com"})["email"] == "a@x.com"
    for empty in ({}, {"type": "lead"}, {"email": "", "phone": None}):
        with pytest.raises(InvalidInput, match="empty"):
            row_to_data(empty)
    assert row_to_data({"id": GUID}) == {"id": GUID, "attributes": {}}  # known only by id
    assert row_to_data({"city": "Paris"}) == {"attributes": {"city": "Paris"}}
