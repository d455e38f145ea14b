"""The text rule where input arrives without a JSON body: CSV rows and CLI files go through
the same domain parsers (people, messages, app documents), OData filters come from a URL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from clarion.domain.apps import parse_document
from clarion.domain.messages import parse_message
from clarion.domain.odata import parse_filter
from clarion.domain.people import normalize_fields
from clarion.errors import InvalidInput

pytestmark = pytest.mark.unit

BAD = pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"], ids=["nul", "surrogate"])


@BAD
@pytest.mark.parametrize(("data", "field"), [
    (lambda bad: {"first_name": bad}, "first_name"),
    (lambda bad: {"attributes": {"note": bad}}, "attributes.note"),
    (lambda bad: {"attributes": {bad: 1}}, "attributes"),
], ids=["first_name", "attribute value", "attribute key"])
def test_person_fields(data: Any, field: str, bad: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_fields(data(bad), default_region=None)
    assert caught.value.field == field


@BAD
def test_message_fields(bad: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_message({"title": "t", "data": {"k": bad}})
    assert caught.value.field == "message.data.k"


@BAD
def test_app_documents(bad: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_document({"name": bad, "web": {"vapid_subject": "mailto:a@b.c"}},
                       now=datetime.now(UTC))
    assert caught.value.field == "name"


def test_odata_filter_values() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_filter("firstname eq 'a\x00'", "contacts")
    assert caught.value.field == "$filter"
