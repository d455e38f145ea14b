"""Trigger declarations and fire data: what is accepted, and the field each refusal names."""

from __future__ import annotations

import pytest

from clarion.domain.triggers import check_data, check_declaration, check_trigger_name
from clarion.errors import InvalidInput

pytestmark = pytest.mark.unit

DECLARED = check_declaration({"cart_total": "number", "city": "string", "vip": "boolean",
                              "at": "datetime"})


def test_good_data_passes_unchanged() -> None:
    data = {"cart_total": 3, "city": "Lyon", "vip": False, "at": "2026-12-07T09:30:00+01:00",
            "extra": None}
    with pytest.raises(InvalidInput, match="no attribute 'extra'"):
        check_data(DECLARED, data, "cart")
    del data["extra"]
    assert check_data(DECLARED, data, "cart") == data
    assert check_data(DECLARED, {"city": None}, "cart") == {"city": None}


@pytest.mark.parametrize(("data", "field"), [
    ({"cart_total": "3"}, "data.cart_total"), ({"cart_total": True}, "data.cart_total"),
    ({"cart_total": float("nan")}, "data.cart_total"), ({"city": 3}, "data.city"),
    ({"vip": "yes"}, "data.vip"), ({"at": "tomorrow"}, "data.at"), ({"at": 5}, "data.at"),
])
def test_wrong_types_name_the_attribute(data: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_data(DECLARED, data, "cart")
    assert caught.value.field == field


@pytest.mark.parametrize("name", ["", "1cart", "cart abandoned", "person.created",
                                  "trigger.x", "interaction.opened", "x" * 101])
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidInput):
        check_trigger_name(name)


def test_declarations() -> None:
    assert check_trigger_name("cart_abandoned.v2") == "cart_abandoned.v2"
    with pytest.raises(InvalidInput, match="money"):
        check_declaration({"a": "money"})
    with pytest.raises(InvalidInput) as caught:
        check_declaration({"a-b": "string"})
    assert caught.value.field == "attributes.a-b"
