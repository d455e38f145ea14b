"""Normalisation rules for people: email, phone (E.164), time zone, locale, ids, attributes."""

from __future__ import annotations

import pytest

from clarion.domain.people import (
    canonical_guid,
    new_person_values,
    normalize_attributes,
    normalize_email,
    normalize_fields,
    normalize_locale,
    normalize_phone,
    normalize_time_zone,
    person_kind,
)
from clarion.errors import InvalidInput

pytestmark = pytest.mark.unit

GUID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


@pytest.mark.parametrize(("raw", "stored"), [
    ("Ada.Lovelace@Example.COM", "ada.lovelace@example.com"),
    ("  ada@example.com ", "ada@example.com"),
    ("ADA@BÜCHER.de", "ada@bücher.de"),
])
def test_emails_are_validated_and_lower_cased(raw: str, stored: str) -> None:
    assert normalize_email(raw) == stored


@pytest.mark.parametrize("raw", ["ada", "ada@", "@example.com", "ada@@example.com", "a b@x.com"])
def test_malformed_emails_are_refused_with_a_fix(raw: str) -> None:
    with pytest.raises(InvalidInput) as err:
        normalize_email(raw)
    assert err.value.field == "email"
    assert "ada@example.com" in err.value.fix


@pytest.mark.parametrize(("raw", "region", "stored"), [
    ("+33 6 12 34 56 78", None, "+33612345678"),
    ("+33612345678", "US", "+33612345678"),  # an international number ignores the region
    ("0033 6 12 34 56 78", None, "+33612345678"),
    ("06.12.34.56.78", "FR", "+33612345678"),
    ("06 12 34 56 78", "fr", "+33612345678"),
    ("(650) 253-0000", "US", "+16502530000"),
    ("+1-650-253-0000", None, "+16502530000"),
])
def test_phones_become_e164(raw: str, region: str | None, stored: str) -> None:
    assert normalize_phone(raw, default_region=region) == stored


def test_a_national_number_without_a_region_is_refused_with_both_fixes() -> None:
    with pytest.raises(InvalidInput) as err:
        normalize_phone("06 12 34 56 78", default_region=None)
    assert "+33612345678" in err.value.fix
    assert "CLARION_DEFAULT_PHONE_REGION" in err.value.fix


@pytest.mark.parametrize("raw", ["+33 6 12", "+999 123456789", "hello", "+1 650 253 0000 ext 5"])
def test_invalid_phones_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as err:
        normalize_phone(raw, default_region=None)
    assert err.value.field == "phone"


def test_a_bad_region_setting_is_named() -> None:
    with pytest.raises(InvalidInput, match="CLARION_DEFAULT_PHONE_REGION='XX'"):
        normalize_phone("0612345678", default_region="XX")


def test_time_zones_are_iana_names() -> None:
    assert normalize_time_zone(" Europe/Paris ") == "Europe/Paris"
    assert normalize_time_zone("UTC") == "UTC"
    for bad in ("Europe/Atlantis", "CEST+2", "../etc/passwd", "", "/usr/share/zoneinfo/UTC"):
        with pytest.raises(InvalidInput) as err:
            normalize_time_zone(bad)
        assert err.value.field == "time_zone"


@pytest.mark.parametrize(("raw", "stored"), [
    ("fr-FR", "fr-FR"), ("en", "en"), ("FR_fr", "fr-FR"), ("zh-hant-tw", "zh-Hant-TW"),
    ("es-419", "es-419"), ("ast", "ast"),
])
def test_locales_are_cased_canonically(raw: str, stored: str) -> None:
    assert normalize_locale(raw) == stored


@pytest.mark.parametrize("raw", ["french", "f", "fr-FRA", "fr--FR", "en-US-x-private", "12"])
def test_odd_locales_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput, match="language tag"):
        normalize_locale(raw)


def test_guids_are_canonical_and_lower_case() -> None:
    assert canonical_guid(GUID.upper()) == GUID
    assert canonical_guid("{" + GUID + "}") == GUID
    assert canonical_guid("not-a-guid") is None
    assert canonical_guid(GUID.replace("-", "")) is None  # 32 hex digits: not how CIJ writes ids
    assert canonical_guid(42) is None


def test_kinds() -> None:
    assert person_kind(" Lead ") == "lead"
    with pytest.raises(InvalidInput, match="contact, lead or profile"):
        person_kind("customer")


def test_attributes_are_flat_scalars_within_limits() -> None:
    ok = {"tier": "gold", "visits": 3, "score": 1.5, "vip": True, "nickname": None}
    assert normalize_attributes(ok) == ok
    bad_values: list[object] = [
        [1], {"a": [1]}, {"a": {"b": 1}}, {"": 1}, {"k" * 101: 1}, {f"k{i}": i for i in range(101)},
        {"x": float("nan")}, {"x": "v" * 2001},
    ]
    for bad in bad_values:
        with pytest.raises(InvalidInput) as err:
            normalize_attributes(bad)
        assert err.value.field == "attributes"
    assert len(normalize_attributes({f"k{i}": i for i in range(100)})) == 100


def test_a_new_person_gets_defaults_and_a_generated_id() -> None:
    values = new_person_values({"email": "Ada@Example.com"}, default_region=None)
    assert canonical_guid(values["id"]) == values["id"]
    assert values["kind"] == "contact"
    assert values["email"] == "ada@example.com"
    assert values["attributes"] == {}
    assert values["phone"] is None
    assert values["locale"] is None
    assert new_person_values({"id": None}, default_region=None)["id"]
    other = new_person_values({"email": "Ada@Example.com"}, default_region=None)
    assert other["id"] != values["id"]


def test_fields_are_checked_and_empty_text_clears() -> None:
    values = normalize_fields({"id": GUID.upper(), "first_name": "  Ada ", "last_name": "",
                               "phone": None, "time_zone": " "}, default_region=None)
    assert values == {"id": GUID, "first_name": "Ada", "last_name": None, "phone": None,
                      "time_zone": None}
    with pytest.raises(InvalidInput, match="unknown field") as err:
        normalize_fields({"emial": "a@b.com"}, default_region=None)
    assert "attributes" in err.value.fix
    with pytest.raises(InvalidInput, match="is not a GUID"):
        normalize_fields({"id": "42"}, default_region=None)
    with pytest.raises(InvalidInput, match="must be text"):
        normalize_fields({"email": 42}, default_region=None)
    with pytest.raises(InvalidInput, match="longer than 200"):
        normalize_fields({"first_name": "x" * 201}, default_region=None)


# --- import: numbers libphonenumber parses but does not know (issue 10, item 10) --------------

@pytest.mark.parametrize(("raw", "stored"), [
    ("+1 555 555 0100", "+15555550100"),     # a 555 number: not assigned
    ("+1 (200) 555-0100", "+12005550100"),   # area code 200: not assigned
    ("+33 7 00 00 00 00", "+33700000000"),   # a French mobile range not in use
])
def test_an_unassigned_number_is_kept_in_e164_with_a_warning_when_asked(raw: str,
                                                                          stored: str) -> None:
    with pytest.raises(InvalidInput):  # the API stays strict
        normalize_phone(raw, default_region=None)
    warnings: list[str] = []
    values = new_person_values({"phone": raw}, default_region=None, phone_warnings=warnings)
    assert values["phone"] == stored
    [warning] = warnings
    assert raw in warning
    assert stored in warning


@pytest.mark.parametrize("raw", ["hello", "+999 123456789", "+1 650 253 0000 ext 5",
                                 "+1 2015550123456789"])  # the last: 17 digits, not E.164
def test_what_cannot_be_an_e164_number_is_still_refused_on_import(raw: str) -> None:
    warnings: list[str] = []
    with pytest.raises(InvalidInput) as err:
        new_person_values({"phone": raw}, default_region=None, phone_warnings=warnings)
    assert err.value.field == "phone"
    assert warnings == []


def test_a_valid_number_gives_no_warning() -> None:
    warnings: list[str] = []
    values = new_person_values({"phone": "+33 6 12 34 56 78"}, default_region=None,
                               phone_warnings=warnings)
    assert (values["phone"], warnings) == ("+33612345678", [])
