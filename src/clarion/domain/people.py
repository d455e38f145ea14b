"""People a push can be addressed to: CIJ contacts, leads and Customer Insights profiles.

A person is identified by a GUID (CIJ's ``contactid`` / ``leadid`` / profile id, which the token
backend sends as ``UserId`` when it registers a device). Everything else is optional and
normalised on the way in so that lookups are exact:

- email: validated with ``email-validator`` (syntax only, no DNS) and lower-cased whole. RFC 5321
  lets the local part be case-sensitive, but no mailbox provider in practice is, and CIJ's
  ``emailaddress1`` comparisons are case-insensitive: one lower-cased form makes lookups exact.
- phone: E.164 (ITU-T E.164, via ``phonenumbers``). A number without ``+country`` is read in
  ``CLARION_DEFAULT_PHONE_REGION`` or refused: guessing the country is how pushes reach strangers.
- time zone: an IANA name (``zoneinfo``); locale: a BCP 47 (RFC 5646) language tag, the common
  ``language[-Script][-REGION]`` shape, cased canonically (``fr-FR``, ``zh-Hant-TW``).
- attributes: a flat JSON object of scalars, for personalisation.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import Field

from clarion.domain.text import check_document
from clarion.errors import InvalidInput

Kind = Literal["contact", "lead", "profile"]
KINDS: tuple[Kind, ...] = ("contact", "lead", "profile")
Scalar = str | int | float | bool | None

MAX_NAME = 200
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_KEY = 100
MAX_ATTRIBUTE_VALUE = 2000
FIELDS = ("id", "kind", "email", "phone", "first_name", "last_name", "time_zone", "locale",
          "attributes")

# RFC 5646 §2.1 langtag, trimmed to language (2-3 letters), optional script (4 letters) and
# optional region (2 letters or 3 digits). Extensions and private use are not needed for push
# personalisation and would only make exact matching harder.
_LOCALE = re.compile(r"^([A-Za-z]{2,3})(?:-([A-Za-z]{4}))?(?:-([A-Za-z]{2}|[0-9]{3}))?$")


@dataclass(frozen=True, slots=True)
class PersonRead:
    id: str
    kind: Kind
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    time_zone: str | None
    locale: str | None
    attributes: Mapping[str, Scalar]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PersonPage:
    items: list[PersonRead]
    next_cursor: Annotated[str | None, Field(
        description="Pass as `cursor` for the next page; null on the last page.")]


_CANONICAL_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def canonical_guid(value: object) -> str | None:
    """The lower-case 36-character form of a GUID, or None when ``value`` is not one."""
    if not isinstance(value, str):
        return None
    if _CANONICAL_GUID.fullmatch(value):  # already canonical (most ids): no UUID object
        return value
    text = value.strip()
    if len(text) not in (36, 38):  # 38: the "{...}" form .NET prints
        return None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def person_id(value: object) -> str:
    guid = canonical_guid(value)
    if guid is None:
        raise InvalidInput(f"id {value!r} is not a GUID", field="id",
                           fix="Give a GUID such as 3f2504e0-4f89-11d3-9a0c-0305e82c3301, or "
                           "leave id out and Clarion generates one.")
    return guid


def person_kind(value: object) -> Kind:
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in KINDS:
        raise InvalidInput(f"type {value!r} is not a kind of person", field="kind",
                           fix="Use contact, lead or profile.")
    return text


def normalize_email(value: str) -> str:
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"email {value!r} is not valid: {exc}", field="email",
                           fix="Give an address such as ada@example.com.") from exc
    return result.normalized.lower()


def normalize_phone(value: str, *, default_region: str | None,
                    warnings: list[str] | None = None) -> str:
    """E.164 form of ``value``; without ``+country`` it is read in ``default_region``.

    A number libphonenumber parses but does not consider valid (not assigned in its numbering
    plan, or of an unusual length there) is refused, unless ``warnings`` is given (imports):
    then it is kept in E.164 form and a warning is appended. libphonenumber's metadata lags
    behind the numbering plans, and an import must not lose a person for it."""
    number = _parse_phone(value, default_region=default_region)
    e164 = str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    if phonenumbers.is_valid_number(number):
        return e164
    # ITU-T E.164 §6.1: at most 15 digits, country code included.
    if warnings is None or len(e164) - 1 > 15:
        raise InvalidInput(f"phone {value!r} is not a valid number", field="phone",
                           fix="Check the digits and the country code, e.g. +33612345678.")
    warnings.append(f"phone {value!r} is not a number in use according to libphonenumber "
                    f"(unassigned, or an unusual length for its country); stored as {e164}")
    return e164


def _parse_phone(value: str, *, default_region: str | None) -> phonenumbers.PhoneNumber:
    text = value.strip()
    international = text.startswith(("+", "00"))
    if not international and not default_region:
        raise InvalidInput(
            f"phone {value!r} has no country code", field="phone",
            fix="Write it in international format, e.g. +33612345678, or set "
            "CLARION_DEFAULT_PHONE_REGION (e.g. FR) to read national numbers in that country.")
    region = None if international else (default_region or "").upper()
    if text.startswith("00"):  # the international call prefix of most of the world (ITU-T E.164)
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        if region and exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            raise InvalidInput(
                f"CLARION_DEFAULT_PHONE_REGION={default_region!r} is not a region code",
                field="phone", fix="Set it to an ISO 3166 alpha-2 code such as FR or US.",
            ) from exc
        raise InvalidInput(f"phone {value!r} is not a phone number", field="phone",
                           fix="Write it in international format, e.g. +33612345678.") from exc
    if number.extension:
        raise InvalidInput(f"phone {value!r} has an extension", field="phone",
                           fix="Push needs a person's own number: drop the extension.")
    return number


def normalize_time_zone(value: str) -> str:
    text = value.strip()
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"time zone {value!r} is not an IANA time zone", field="time_zone",
                           fix="Use a name from the IANA database such as Europe/Paris or "
                           "America/New_York (case matters).") from exc
    return text


def normalize_locale(value: str) -> str:
    match = _LOCALE.match(value.strip().replace("_", "-"))
    if match is None:
        raise InvalidInput(f"locale {value!r} is not a language tag", field="locale",
                           fix="Use a BCP 47 tag such as fr-FR, en or zh-Hant-TW.")
    language, script, region = match.groups()
    parts = [language.lower()]
    if script:
        parts.append(script.title())
    if region:
        parts.append(region.upper())
    return "-".join(parts)


def normalize_attributes(value: object) -> dict[str, Scalar]:
    fix = ("Give attributes as a flat JSON object of at most 100 keys (each at most 100 "
           "characters) whose values are strings, numbers, booleans or null.")
    if not isinstance(value, Mapping):
        raise InvalidInput("attributes must be a JSON object", field="attributes", fix=fix)
    if len(value) > MAX_ATTRIBUTES:
        raise InvalidInput(f"{len(value)} attributes is more than {MAX_ATTRIBUTES}",
                           field="attributes", fix=fix)
    out: dict[str, Scalar] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_ATTRIBUTE_KEY:
            raise InvalidInput(f"attribute name {key!r} is empty or too long",
                               field="attributes", fix=fix)
        if item is not None and not isinstance(item, str | int | float | bool):
            raise InvalidInput(f"attribute {key!r} holds a {type(item).__name__}, not a scalar",
                               field="attributes", fix=fix)
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidInput(f"attribute {key!r} is not a finite number",
                               field="attributes", fix=fix)
        if isinstance(item, str) and len(item) > MAX_ATTRIBUTE_VALUE:
            raise InvalidInput(f"attribute {key!r} is longer than {MAX_ATTRIBUTE_VALUE} "
                               "characters", field="attributes", fix=fix)
        out[key] = item
    return out


def _name(value: object, field: str) -> str | None:
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text", field=field, fix=f"Give {field} as a string.")
    text = value.strip()
    if len(text) > MAX_NAME:
        raise InvalidInput(f"{field} is longer than {MAX_NAME} characters", field=field,
                           fix=f"Shorten {field}.")
    return text or None


def _text(value: object, field: str) -> str | None:
    """A non-empty string, None for an empty one; other types are refused."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text, not {type(value).__name__}", field=field,
                           fix=f"Give {field} as a string.")
    return value.strip() or None


def normalize_fields(data: Mapping[str, Any], *, default_region: str | None,
                     phone_warnings: list[str] | None = None) -> dict[str, Any]:
    """Validate and normalise the person fields present in ``data`` (a create or a partial
    update); the result holds the same keys, ready for the ``people`` table. ``None`` or an empty
    string clears an optional field. ``phone_warnings``: see ``normalize_phone``."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(unknown)}", field=unknown[0],
                           fix=f"Known fields are {', '.join(FIELDS)}; put anything else in "
                           "attributes.")
    check_document(dict(data))  # CSV rows and CLI input too, not only JSON bodies
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "id":
            out["id"] = None if value is None else person_id(value)
        elif key == "kind":
            out["kind"] = person_kind(value)
        elif key == "attributes":
            out["attributes"] = normalize_attributes({} if value is None else value)
        elif key in ("first_name", "last_name"):
            out[key] = None if value is None else _name(value, key)
        else:
            text = _text(value, key)
            if text is None:
                out[key] = None
            elif key == "email":
                out[key] = normalize_email(text)
            elif key == "phone":
                out[key] = normalize_phone(text, default_region=default_region,
                                           warnings=phone_warnings)
            elif key == "time_zone":
                out[key] = normalize_time_zone(text)
            else:
                out[key] = normalize_locale(text)
    return out


def new_person_values(data: Mapping[str, Any], *, default_region: str | None,
                      phone_warnings: list[str] | None = None) -> dict[str, Any]:
    """Every column of a new person except org and timestamps (id generated when absent)."""
    values = normalize_fields(data, default_region=default_region,
                              phone_warnings=phone_warnings)
    if values.get("id") is None:
        values["id"] = str(uuid.uuid4())
    values.setdefault("kind", "contact")
    values.setdefault("attributes", {})
    for key in ("email", "phone", "first_name", "last_name", "time_zone", "locale"):
        values.setdefault(key, None)
    return values
