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


def test_a_deeply_nested_json_array_is_an_input_error_not_a_crash() -> None:
    with pytest.raises(InvalidInput) as caught:
        list(iter_jsonl(io.StringIO("[" * 100_000 + "]" * 100_000)))
    assert caught.value.field == "file"
    assert "line 1, column" in caught.value.message


def test_a_line_with_an_escaped_nul_or_lone_surrogate_is_unreadable_not_stored() -> None:
    rows = list(iter_jsonl(io.StringIO('{"email": "a\\u0000@x.com"}\n{"email": "\\ud800"}\n'
                                       '{"email": "c@x.com"}\n')))
    assert [type(r) for _, r in rows] == [UnreadableRow, UnreadableRow, dict]


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


# --- robustness: a huge cell, a quote never closed (issue 10, item 10) ------------------------

BIG = "x" * 2_000_000  # larger than csv.field_size_limit() (131,072 by default)


def test_a_2mb_cell_rejects_only_its_row_with_its_real_line() -> None:
    text = ("email,note\n"
            "a@x.com,ok\n"                      # line 2
            f"b@x.com,{BIG}\n"                  # line 3: too large
            "c@x.com,ok\n")                     # line 4
    rows = list(iter_csv(io.StringIO(text)))
    assert [line for line, _ in rows] == [2, 3, 4]
    assert rows[0][1] == {"email": "a@x.com", "note": "ok"}
    assert isinstance(rows[1][1], UnreadableRow)
    assert "larger than" in rows[1][1].reason
    assert rows[2][1] == {"email": "c@x.com", "note": "ok"}


def test_a_2mb_quoted_multiline_cell_counts_its_newlines() -> None:
    text = ("email,note\n"
            'a@x.com,"two\nlines"\n'            # lines 2-3
            f'b@x.com,"three\n{BIG}\nlines"\n'  # lines 4-6: too large
            'c@x.com,"say ""hi"",\nok"\n'        # lines 7-8: an escaped quote, a comma
            "d@x.com,plain\n")                  # line 9
    rows = list(iter_csv(io.StringIO(text)))
    assert [line for line, _ in rows] == [3, 6, 8, 9]
    assert rows[0][1]["note"] == "two\nlines"
    assert isinstance(rows[1][1], UnreadableRow)
    assert "lines 4-6" in rows[1][1].reason
    assert rows[2][1] == {"email": "c@x.com", "note": 'say "hi",\nok'}
    assert rows[3][1] == {"email": "d@x.com", "note": "plain"}


def test_a_quote_inside_an_unquoted_cell_is_a_plain_character() -> None:
    """As the csv module reads it (excel dialect): only a quote opening a cell quotes."""
    text = 'name,size\nscreen,5" wide\nb,2\n'
    assert list(iter_csv(io.StringIO(text))) == [
        (2, {"name": "screen", "size": '5" wide'}), (3, {"name": "b", "size": "2"})]


def test_a_quote_never_closed_is_one_rejected_row_not_an_aborted_import() -> None:
    text = "email,note\na@x.com,ok\n" + 'b@x.com,"never closed\n' + "c@x.com,x\n" * 5 + BIG
    rows = list(iter_csv(io.StringIO(text)))
    assert rows[0] == (2, {"email": "a@x.com", "note": "ok"})
    [(line, bad)] = rows[1:]
    assert isinstance(bad, UnreadableRow)
    assert line == 9
    assert "never closed" in bad.reason
    assert "line 3" in bad.reason
