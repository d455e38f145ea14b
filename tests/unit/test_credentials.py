"""Credential validation and the app configuration document, with real keys made here."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from clarion.domain.apps import AppSettings, TokenOwnerPolicy, merge_settings, parse_document
from clarion.domain.credentials import (
    check_token_uri,
    merge_for_update,
    normalise_p8,
    token_uri_refusal,
    validate_android,
    validate_ios,
    validate_web,
)
from clarion.domain.outcomes import Platform
from clarion.errors import InvalidInput

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _pem(key: Any) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture(scope="module")
def p8() -> str:
    return _pem(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="module")
def rsa_pem() -> str:
    return _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ios_token(p8: str, **over: Any) -> dict[str, Any]:
    doc = {"auth": "token", "signing_key": p8, "key_id": "ABC123DEFG", "team_id": "DEF123GHIJ",
           "bundle_id": "com.contoso.app", "environment": "sandbox"}
    doc.update(over)
    return {k: v for k, v in doc.items() if v is not None}


def service_account(rsa_pem: str, **over: Any) -> dict[str, Any]:
    sa = {"type": "service_account", "project_id": "contoso-push", "private_key_id": "abc",
          "private_key": rsa_pem,
          "client_email": "push@contoso-push.iam.gserviceaccount.com",
          "token_uri": "https://oauth2.googleapis.com/token"}
    sa.update(over)
    return sa


def fails(fn: Any, *args: Any, **kwargs: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        fn(*args, **kwargs)
    assert info.value.fix, "every error must say how to fix it"
    return info.value


# --- iOS token (.p8) ------------------------------------------------------------------------


def test_p8_is_accepted_as_pem_one_line_and_without_armour(p8: str) -> None:
    one_line = p8.replace("\n", "")
    body_only = "".join(line for line in p8.splitlines() if not line.startswith("-----"))
    json_escaped = p8.replace("\n", "\\n")
    results = {normalise_p8(v) for v in (p8, one_line, body_only, json_escaped, f"  {p8}  ")}
    assert results == {p8}


def test_ios_token_public_and_secret_halves(p8: str) -> None:
    cfg = validate_ios(ios_token(p8.replace("\n", "")), now=NOW)
    assert cfg.public == {"auth": "token", "key_id": "ABC123DEFG", "team_id": "DEF123GHIJ",
                          "bundle_id": "com.contoso.app", "environment": "sandbox"}
    assert cfg.secret == {"signing_key": p8}
    assert "PRIVATE" not in json.dumps(cfg.public)


def test_auth_is_inferred_from_the_signing_key(p8: str) -> None:
    assert validate_ios(ios_token(p8, auth=None), now=NOW).public["auth"] == "token"


@pytest.mark.parametrize(("text", "needle"), [
    ("not a key at all!", "base64"),
    (base64.b64encode(b"hello world, no key").decode(), "does not parse"),
    ("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", "certificate"),
])
def test_p8_that_does_not_parse(p8: str, text: str, needle: str) -> None:
    err = fails(validate_ios, ios_token(p8, signing_key=text), now=NOW)
    assert err.field == "ios.signing_key"
    assert needle in err.message
    assert "AuthKey_" in err.fix


def test_p8_truncated(p8: str) -> None:
    body = "".join(line for line in p8.splitlines() if not line.startswith("-----"))
    err = fails(normalise_p8, body[: len(body) // 2 // 4 * 4])
    assert err.field == "ios.signing_key"


def test_p8_of_the_wrong_key_type(rsa_pem: str) -> None:
    err = fails(normalise_p8, rsa_pem)
    assert "P-256" in err.message
    assert "RSA" in err.message
    p384 = _pem(ec.generate_private_key(ec.SECP384R1()))
    assert "secp384r1" in fails(normalise_p8, p384).message


def test_missing_signing_key(p8: str) -> None:
    err = fails(validate_ios, ios_token(p8, signing_key=None), now=NOW)
    assert (err.field, err.message) == ("ios.signing_key", "is required for token auth")


@pytest.mark.parametrize(("field", "value", "hint"), [
    ("key_id", "ABC123DEF", "got 9 characters"),
    ("key_id", "ABC123DEFGH", "got 11 characters"),
    ("key_id", "AuthKey_ABC123DEFG.p8", "ABC123DEFG"),
    ("key_id", "5d3ad4b0-6f2c-4c1e-9d1a-0c6e1b2a3f4e", "Issuer ID"),
    ("team_id", "DEF123GHIJ.com.contoso.app", "first 10 characters are the Team ID: DEF123GHIJ"),
    ("team_id", "com.contoso.app", "bundle id"),
    ("key_id", "ABC-23DEFG", "letters and digits"),
])
def test_ten_character_ids(p8: str, field: str, value: str, hint: str) -> None:
    err = fails(validate_ios, ios_token(p8, **{field: value}), now=NOW)
    assert err.field == f"ios.{field}"
    assert "exactly 10 letters or digits" in err.message
    assert hint in err.message
    assert ("Key ID" if field == "key_id" else "Team ID") in err.fix


def test_missing_key_id_names_the_field(p8: str) -> None:
    err = fails(validate_ios, ios_token(p8, key_id=None), now=NOW)
    assert (err.field, err.message) == ("ios.key_id", "is required")


@pytest.mark.parametrize("value", ["contoso", "https://contoso.com/app", "com.contoso app"])
def test_bundle_id_must_be_reverse_dns(p8: str, value: str) -> None:
    err = fails(validate_ios, ios_token(p8, bundle_id=value), now=NOW)
    assert err.field == "ios.bundle_id"


@pytest.mark.parametrize(("value", "hint"), [("staging", ""), ("development", "'sandbox'"),
                                             ("prod", "'production'")])
def test_unknown_environment_lists_the_allowed_values(p8: str, value: str, hint: str) -> None:
    err = fails(validate_ios, ios_token(p8, environment=value), now=NOW)
    assert err.field == "ios.environment"
    assert "'sandbox' or 'production'" in err.message
    assert hint in err.message


def test_environment_is_case_insensitive(p8: str) -> None:
    cfg = validate_ios(ios_token(p8, environment=" Production "), now=NOW)
    assert cfg.public["environment"] == "production"


def test_unknown_auth_mode_and_fields(p8: str) -> None:
    assert fails(validate_ios, ios_token(p8, auth="jwt"), now=NOW).field == "ios.auth"
    err = fails(validate_ios, ios_token(p8, keyid="x"), now=NOW)
    assert err.field == "ios.keyid"
    assert "key_id" in err.fix
    err = fails(validate_ios, ios_token(p8, certificate_p12="AAAA"), now=NOW)
    assert err.field == "ios.certificate_p12"
    assert "not used with auth 'token'" in err.message


def test_ios_must_be_an_object() -> None:
    assert fails(validate_ios, "token", now=NOW).field == "ios"


# --- iOS certificate (.p12) -------------------------------------------------------------------


def make_p12(*, password: bytes | None, not_after: datetime, uid: str | None = None) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, "Apple Push Services: com.contoso.app")]
    if uid:
        attrs.insert(0, x509.NameAttribute(NameOID.USER_ID, uid))
    name = x509.Name(attrs)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_after - timedelta(days=365)).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    enc = (serialization.BestAvailableEncryption(password) if password
           else serialization.NoEncryption())
    blob = pkcs12.serialize_key_and_certificates(b"push", key, cert, None, enc)
    return base64.b64encode(blob).decode()


@pytest.fixture(scope="module")
def p12() -> str:
    return make_p12(password=b"s3cret", not_after=NOW + timedelta(days=200), uid="com.contoso.app")


def ios_cert(p12: str, **over: Any) -> dict[str, Any]:
    doc = {"auth": "certificate", "certificate_p12": p12, "certificate_password": "s3cret",
           "bundle_id": "com.contoso.app", "environment": "production"}
    doc.update(over)
    return {k: v for k, v in doc.items() if v is not None}


def test_certificate_records_subject_and_expiry(p12: str) -> None:
    cfg = validate_ios(ios_cert(p12), now=NOW)
    assert cfg.public["auth"] == "certificate"
    assert cfg.public["certificate_expires_at"] == (NOW + timedelta(days=200)).isoformat(
        ).replace("+00:00", "Z")
    assert "Apple Push Services" in cfg.public["certificate_subject"]
    assert cfg.secret["certificate_password"] == "s3cret"
    assert "BEGIN CERTIFICATE" in cfg.secret["certificate_pem"]
    assert "BEGIN PRIVATE KEY" in cfg.secret["private_key_pem"]
    assert "s3cret" not in json.dumps(cfg.public)


def test_certificate_with_line_breaks_in_base64(p12: str) -> None:
    wrapped = "\n".join(p12[i:i + 64] for i in range(0, len(p12), 64))
    assert validate_ios(ios_cert(wrapped), now=NOW).public["bundle_id"] == "com.contoso.app"


def test_certificate_wrong_password(p12: str) -> None:
    err = fails(validate_ios, ios_cert(p12, certificate_password="nope"), now=NOW)
    assert err.field == "ios.certificate_p12"
    assert "password is wrong" in err.message


def test_not_a_p12(p12: str) -> None:
    junk = base64.b64encode(b"this is not a pkcs12 file").decode()
    assert "PKCS#12" in fails(validate_ios, ios_cert(p12, certificate_p12=junk), now=NOW).message
    assert "base64" in fails(validate_ios, ios_cert(p12, certificate_p12="%%%"), now=NOW).message


def test_expired_certificate_says_when() -> None:
    expired = make_p12(password=b"pw", not_after=datetime(2025, 6, 30, 12, 0, tzinfo=UTC))
    err = fails(validate_ios, ios_cert(expired, certificate_password="pw"), now=NOW)
    assert err.field == "ios.certificate_p12"
    assert "expired on 2025-06-30T12:00:00Z" in err.message
    assert ".p8" in err.fix


def test_certificate_without_password_and_bundle_mismatch() -> None:
    open_p12 = make_p12(password=None, not_after=NOW + timedelta(days=10), uid="com.other.app")
    err = fails(validate_ios, ios_cert(open_p12, certificate_password=None), now=NOW)
    assert err.field == "ios.bundle_id"
    assert "com.other.app" in err.message
    ok = validate_ios(ios_cert(open_p12, certificate_password=None, bundle_id="com.other.app"),
                      now=NOW)
    assert ok.public["bundle_id"] == "com.other.app"


def test_certificate_needs_bundle_and_environment(p12: str) -> None:
    assert fails(validate_ios, ios_cert(p12, bundle_id=None), now=NOW).field == "ios.bundle_id"
    err = fails(validate_ios, ios_cert(p12, environment=None), now=NOW)
    assert err.field == "ios.environment"


# --- Android ----------------------------------------------------------------------------------


def test_service_account_public_and_secret(rsa_pem: str) -> None:
    sa = service_account(rsa_pem)
    cfg = validate_android({"service_account": sa})
    assert cfg.public == {"project_id": "contoso-push",
                          "client_email": "push@contoso-push.iam.gserviceaccount.com",
                          "token_uri": "https://oauth2.googleapis.com/token",
                          "notification_block": False}
    assert cfg.secret["service_account"]["private_key"].strip() == rsa_pem.strip()
    assert cfg.secret["service_account"]["private_key_id"] == "abc"


def test_service_account_as_json_string(rsa_pem: str) -> None:
    text = json.dumps(service_account(rsa_pem), indent=2)
    cfg = validate_android({"service_account": text, "notification_block": True})
    assert cfg.public["project_id"] == "contoso-push"
    assert cfg.public["notification_block"] is True


def test_google_services_json_is_recognised() -> None:
    google_services = {
        "project_info": {"project_number": "123", "project_id": "contoso-push"},
        "client": [{"client_info": {"mobilesdk_app_id": "1:123:android:abc"},
                    "api_key": [{"current_key": "AIzaSyXXXX"}]}],
        "configuration_version": "1",
    }
    for given in (google_services, json.dumps(google_services)):
        err = fails(validate_android, {"service_account": given})
        assert err.field == "android.service_account"
        assert "google-services.json" in err.message
        assert "Service accounts" in err.fix
        assert "Generate new private key" in err.fix
    err = fails(validate_android, google_services)  # uploaded as the whole android object
    assert "service_account" in err.fix


@pytest.mark.parametrize(("change", "field"), [
    ({"type": "authorized_user"}, "android.service_account.type"),
    ({"project_id": ""}, "android.service_account.project_id"),
    ({"project_id": "a/b"}, "android.service_account.project_id"),
    ({"client_email": "nobody"}, "android.service_account.client_email"),
    ({"private_key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"},
     "android.service_account.private_key"),
    ({"private_key": None}, "android.service_account.private_key"),
    ({"token_uri": "ftp://x"}, "android.service_account.token_uri"),
    ({"token_uri": "https://"}, "android.service_account.token_uri"),
])
def test_service_account_fields(rsa_pem: str, change: dict[str, Any], field: str) -> None:
    err = fails(validate_android, {"service_account": service_account(rsa_pem, **change)})
    assert err.field == field


def test_service_account_key_must_be_rsa(p8: str, rsa_pem: str) -> None:
    err = fails(validate_android, {"service_account": service_account(rsa_pem, private_key=p8)})
    assert "RSA" in err.message


@pytest.mark.parametrize(("uri", "fcm_url", "ok"), [
    ("https://oauth2.googleapis.com/token", None, True),
    ("https://accounts.google.com/o/oauth2/token", None, True),
    ("https://www.googleapis.com/oauth2/v4/token", "http://127.0.0.1:8082", True),
    ("http://127.0.0.1:8082/token", "http://127.0.0.1:8082", True),
    ("http://fcm-emulator:8082/token", "http://fcm-emulator:8082/", True),
    ("http://oauth2.googleapis.com/token", None, False),  # not https
    ("https://oauth2.googleapis.com:444/token", None, False),
    ("https://oauth2.googleapis.com/token/x", None, False),
    ("https://oauth2.googleapis.com.evil.example/token", None, False),
    ("https://evil.example/token", "http://127.0.0.1:8082", False),
    ("http://127.0.0.1:8083/token", "http://127.0.0.1:8082", False),
    ("http://localhost:8082/token", "http://127.0.0.1:8082", False),
    ("https://127.0.0.1:8082/token", "http://127.0.0.1:8082", False),
    ("http://x@127.0.0.1:8082/token", "http://127.0.0.1:8082", False),
    ("http://127.0.0.1:8082\\@evil.example/token", "http://127.0.0.1:8082", False),
    ("http://127.0.0.1:8082/token", None, False),
])
def test_token_uri_only_google_or_the_operators_fcm_origin(
        uri: str, fcm_url: str | None, ok: bool) -> None:
    assert (token_uri_refusal(uri, fcm_url=fcm_url) is None) is ok
    if not ok:
        with pytest.raises(InvalidInput, match="CLARION_FCM_URL") as err:
            check_token_uri(uri, fcm_url=fcm_url)
        assert err.value.field == "android.service_account.token_uri"


def test_emulator_token_uri_on_loopback(rsa_pem: str) -> None:
    for uri in ("http://127.0.0.1:9099/token", "http://localhost/token"):
        cfg = validate_android({"service_account": service_account(rsa_pem, token_uri=uri)})
        assert cfg.public["token_uri"] == uri


def test_legacy_server_key_and_other_mistakes(rsa_pem: str) -> None:
    err = fails(validate_android, {"service_account": "AAAAbc123:APA91bHun4MxP5egoKMwt2K"})
    assert "legacy" in err.message
    not_json = fails(validate_android, {"service_account": "{not json"})
    assert not_json.field == "android.service_account"
    assert "is not valid JSON: " in not_json.message
    assert not_json.message.endswith("at line 1, column 2")
    assert fails(validate_android, {}).message == "is required"
    assert fails(validate_android, {"service_account": [1]}).field == "android.service_account"
    err = fails(validate_android, {"service_account": service_account(rsa_pem),
                                   "notification_block": "yes"})
    assert err.field == "android.notification_block"


# --- Web (VAPID) ------------------------------------------------------------------------------


def _decode(b64url: str) -> bytes:
    return base64.urlsafe_b64decode(b64url + "=" * (-len(b64url) % 4))


def test_vapid_key_pair_is_generated() -> None:
    a = validate_web({"vapid_subject": "mailto:ops@contoso.com"})
    b = validate_web({"vapid_subject": "https://contoso.com/contact"})
    pub = a.public["vapid_public_key"]
    assert "=" not in pub
    point = _decode(pub)
    assert len(point) == 65
    assert point[0] == 4
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)  # a valid point
    assert len(_decode(a.secret["vapid_private_key"])) == 32
    assert pub != b.public["vapid_public_key"]
    assert a.public["vapid_subject"] == "mailto:ops@contoso.com"


def test_supplied_vapid_key_raw_and_pem() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.private_numbers().private_value.to_bytes(32, "big")
    raw_b64 = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    expected = base64.urlsafe_b64encode(key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint,
    )).rstrip(b"=").decode()
    for given in (raw_b64, _pem(key)):
        cfg = validate_web({"vapid_subject": "mailto:a@b.co", "vapid_private_key": given})
        assert cfg.public["vapid_public_key"] == expected
        assert cfg.secret == {"vapid_private_key": raw_b64}
    cfg = validate_web({"vapid_subject": "mailto:a@b.co", "vapid_private_key": raw_b64,
                        "vapid_public_key": expected + "="})
    assert cfg.public["vapid_public_key"] == expected


def test_vapid_mistakes() -> None:
    other = validate_web({"vapid_subject": "mailto:a@b.co"})
    mine = validate_web({"vapid_subject": "mailto:a@b.co"})
    err = fails(validate_web, {"vapid_subject": "mailto:a@b.co",
                               "vapid_private_key": mine.secret["vapid_private_key"],
                               "vapid_public_key": other.public["vapid_public_key"]})
    assert (err.field, err.message) == ("web.vapid_public_key",
                                        "does not belong to web.vapid_private_key")
    err = fails(validate_web, {"vapid_subject": "mailto:a@b.co",
                               "vapid_public_key": other.public["vapid_public_key"]})
    assert "without its private key" in err.message
    err = fails(validate_web, {"vapid_subject": "mailto:a@b.co", "vapid_private_key": "abcd"})
    assert err.field == "web.vapid_private_key"
    for subject in ("ops@contoso.com", "http://contoso.com", "mailto:", None):
        assert fails(validate_web, {"vapid_subject": subject}).field == "web.vapid_subject"


# --- the document, settings and updates -------------------------------------------------------


def test_document_needs_a_name_and_a_platform(p8: str) -> None:
    web = {"vapid_subject": "mailto:a@b.co"}
    assert fails(parse_document, {"web": web}, now=NOW).field == "name"
    assert fails(parse_document, {"name": "x" * 201, "web": web}, now=NOW).field == "name"
    assert "at least one platform" in fails(parse_document, {"name": "A"}, now=NOW).message
    assert "at least one platform" in fails(parse_document, {"name": "A", "ios": None},
                                            now=NOW).message
    assert fails(parse_document, {"name": "A", "andriod": {}, "web": web}, now=NOW).field == \
        "andriod"
    assert fails(parse_document, ["not", "an", "object"], now=NOW).field is None
    changes = parse_document({"name": "  Contoso ", "ios": ios_token(p8), "web": web}, now=NOW)
    assert changes.name == "Contoso"
    assert set(changes.platforms) == {Platform.IOS, Platform.WEB}
    assert changes.settings == AppSettings()


def test_settings_defaults_and_validation() -> None:
    s = AppSettings()
    assert (s.dry_run_on_register, s.token_owner_policy, s.max_devices_per_person) == \
        (True, TokenOwnerPolicy.MOVE, 10)
    merged = merge_settings(s, {"token_owner_policy": "allow", "max_devices_per_person": 1000})
    assert merged.token_owner_policy == "allow"
    assert merged.max_devices_per_person == 1000
    assert merged.dry_run_on_register is True
    for bad, field in [({"max_devices_per_person": 0}, "max_devices_per_person"),
                       ({"max_devices_per_person": 1001}, "max_devices_per_person"),
                       ({"max_devices_per_person": True}, "max_devices_per_person"),
                       ({"token_owner_policy": "steal"}, "token_owner_policy"),
                       ({"dry_run_on_register": "yes"}, "dry_run_on_register"),
                       ({"dry_run": False}, "dry_run")]:
        assert fails(merge_settings, s, bad).field == f"settings.{field}"
    assert AppSettings.from_stored({"max_devices_per_person": 3, "future_key": 1}) == \
        AppSettings(max_devices_per_person=3)


def test_update_merges_over_the_stored_configuration(p8: str) -> None:
    ios = validate_ios(ios_token(p8), now=NOW)
    web = validate_web({"vapid_subject": "mailto:a@b.co"})
    current = {Platform.IOS: {**ios.public, **ios.secret}, Platform.WEB: {**web.public,
                                                                          **web.secret}}
    changes = parse_document({"ios": {"environment": "production"},
                              "web": {"vapid_subject": "https://contoso.com"},
                              "settings": {"dry_run_on_register": False}},
                             now=NOW, current=current,
                             current_settings=AppSettings(max_devices_per_person=4))
    new_ios, new_web = changes.platforms[Platform.IOS], changes.platforms[Platform.WEB]
    assert new_ios is not None
    assert new_web is not None
    assert new_ios.public["environment"] == "production"
    assert new_ios.secret == ios.secret  # the .p8 was not pasted again and is kept
    assert new_web.secret == web.secret  # the VAPID keys survive: subscriptions stay valid
    assert new_web.public["vapid_subject"] == "https://contoso.com"
    assert changes.name is None
    assert changes.settings == AppSettings(dry_run_on_register=False, max_devices_per_person=4)
    removal = parse_document({"web": None}, now=NOW, current=current)
    assert removal.platforms == {Platform.WEB: None}
    err = fails(parse_document, {"ios": None, "web": None}, now=NOW, current=current)
    assert "at least one platform" in err.message


def test_switching_ios_auth_starts_from_scratch(p8: str, p12: str) -> None:
    ios = validate_ios(ios_token(p8), now=NOW)
    stored = {**ios.public, **ios.secret}
    update = {"certificate_p12": p12, "certificate_password": "s3cret"}
    merged = merge_for_update(Platform.IOS, stored, update)
    assert merged == update
    cfg = validate_ios(merge_for_update(Platform.IOS, stored, ios_cert(p12)), now=NOW)
    assert cfg.public["auth"] == "certificate"
    err = fails(validate_ios, merge_for_update(Platform.IOS, stored, update), now=NOW)
    assert err.field == "ios.bundle_id"  # nothing carried over from the token config


@pytest.mark.parametrize("subject", ["https://contoso.com/a\nb", "https://contoso.com/\tx",
                                     "mailto:ops@contoso.com\x00", "https://contoso.com/\x85x"])
def test_vapid_subjects_with_control_characters_are_refused(subject: str) -> None:
    assert fails(validate_web, {"vapid_subject": subject}).field == "web.vapid_subject"
