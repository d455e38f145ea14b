"""APNs credentials: token auth (``.p8`` + Key ID + Team ID) or a ``.p12`` certificate.

Apple's references: "Establishing a token-based connection to APNs" (ES256 key, 10-character
Key ID and Team ID) and "Establishing a certificate-based connection to APNs". CIJ asks users to
paste the ``.p8`` "with line breaks removed", so armour and whitespace are optional here; the
frequent mix-ups (a file name for the Key ID, an App ID for the Team ID, a certificate for the
key) get a targeted hint.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from clarion.domain.credential_input import (
    PlatformConfig,
    as_object,
    bad,
    iso,
    reject_unknown,
    required_text,
)
from clarion.domain.outcomes import Platform
from clarion.ids import is_guid

IOS_ENVIRONMENTS = ("sandbox", "production")
IOS_AUTH_MODES = ("token", "certificate")

_TOKEN_ONLY = frozenset({"signing_key", "key_id", "team_id"})
_CERT_ONLY = frozenset({"certificate_p12", "certificate_password"})
_TEN_CHAR_ID = re.compile(r"[A-Za-z0-9]{10}")
# Apple: "alphanumeric characters (A-Z, a-z, 0-9), hyphens (-), and periods (.)", reverse-DNS.
_BUNDLE_ID = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_ARMOUR = re.compile(r"-----(BEGIN|END)[A-Z0-9 ]*-----")

_KEY_ID_FIX = ("Copy the 10-character Key ID shown next to the key in Apple Developer → "
               "Certificates, Identifiers & Profiles → Keys (the .p8 file is named "
               "AuthKey_<KeyID>.p8).")
_TEAM_ID_FIX = ("Copy the 10-character Team ID from Apple Developer → Membership details "
                "(also shown at the top right of Certificates, Identifiers & Profiles).")
_P8_FIX = ("Paste the whole content of the AuthKey_<KeyID>.p8 file downloaded from Apple "
           "Developer → Keys (line breaks and the BEGIN/END lines may be kept or removed).")
_P12_FIX = ("Export the push certificate and its private key from Keychain Access as a .p12 "
            "file and send it base64-encoded (`base64 -w0 cert.p12`), with its password in "
            "ios.certificate_password.")


def ios_auth(ios: Mapping[str, Any]) -> Any:
    """The auth mode asked for: explicit, else inferred from the credential given, else None."""
    if "auth" in ios:
        return ios["auth"]
    if "signing_key" in ios:
        return "token"
    if "certificate_p12" in ios:
        return "certificate"
    return None


def validate_ios(raw: Any, *, now: datetime) -> PlatformConfig:
    ios = as_object(raw, "ios", '{"auth": "token", "signing_key": "...", "key_id": "...", ...}')
    reject_unknown(ios, Platform.IOS)
    auth = ios_auth(ios) or "token"
    if auth not in IOS_AUTH_MODES:
        raise bad("ios.auth", f"unknown auth mode {str(auth)[:40]!r}; allowed values are "
                  "'token' (a .p8 signing key) or 'certificate' (a .p12 file)",
                  "Set ios.auth to 'token' (recommended) or 'certificate'.")
    other = _CERT_ONLY if auth == "token" else _TOKEN_ONLY
    if stray := sorted(other & set(ios)):
        raise bad(f"ios.{stray[0]}", f"is not used with auth {auth!r}",
                  f"Remove {', '.join(stray)}, or set ios.auth to the mode that uses "
                  f"{'it' if len(stray) == 1 else 'them'}.")
    return _token(ios) if auth == "token" else _certificate(ios, now)


def _ten_char_id(raw: Mapping[str, Any], key: str, what: str, fix: str) -> str:
    field = f"ios.{key}"
    value = required_text(raw, key, field, fix)
    if _TEN_CHAR_ID.fullmatch(value):
        return value
    hint = ""
    if m := re.search(r"AuthKey_([A-Za-z0-9]{10})", value):
        hint = (f" This looks like the .p8 file name; the Key ID is the part after "
                f"'AuthKey_': {m.group(1)}.")
    elif "-----BEGIN" in value or len(value) > 64:
        hint = " This looks like the key file's content, which belongs in ios.signing_key."
    elif is_guid(value):
        hint = (" This looks like a UUID (for example the App Store Connect Issuer ID), "
                f"not the {what}.")
    elif m := re.fullmatch(r"([A-Za-z0-9]{10})\.[A-Za-z0-9.-]+", value):
        hint = (" This looks like an App ID (Team ID + bundle id); its first 10 characters "
                f"are the Team ID: {m.group(1)}.")
    elif _BUNDLE_ID.fullmatch(value):
        hint = " This looks like a bundle id, which belongs in ios.bundle_id."
    elif re.search(r"[^A-Za-z0-9]", value):
        hint = " Only letters and digits are allowed."
    raise bad(field, f"the {what} must be exactly 10 letters or digits, got "
              f"{len(value)} characters.{hint}", fix)


def _bundle_id(raw: Mapping[str, Any]) -> str:
    fix = ("Use the app's bundle identifier from Xcode (target → General → Bundle Identifier), "
           "e.g. com.contoso.app.")
    value = required_text(raw, "bundle_id", "ios.bundle_id", fix)
    if _BUNDLE_ID.fullmatch(value) and len(value) <= 155:
        return value
    hint = ""
    if "://" in value:
        hint = " This is a URL; a bundle id has no scheme."
    elif "." not in value:
        hint = " A bundle id has at least two parts separated by dots."
    raise bad("ios.bundle_id", f"{value[:80]!r} is not a reverse-DNS bundle id.{hint}", fix)


def _environment(raw: Mapping[str, Any]) -> str:
    allowed = " or ".join(repr(e) for e in IOS_ENVIRONMENTS)
    fix = (f"Set ios.environment to {allowed}: sandbox for development builds run from Xcode, "
           "production for App Store and TestFlight builds.")
    value = required_text(raw, "environment", "ios.environment", fix).lower()
    if value in IOS_ENVIRONMENTS:
        return value
    hint = ""
    if value in ("development", "dev", "debug"):
        hint = " Apple's development environment is called 'sandbox' here."
    elif value in ("prod", "release", "appstore", "app store"):
        hint = " Did you mean 'production'?"
    raise bad("ios.environment", f"unknown environment {value[:40]!r}; allowed values are "
              f"{allowed}.{hint}", fix)


def normalise_p8(text: str) -> str:
    """The PKCS#8 PEM of an APNs ``.p8`` key given with or without armour and line breaks.

    Raises ``InvalidInput`` (field ``ios.signing_key``) unless it is an EC P-256 private key."""
    field = "ios.signing_key"
    if "BEGIN CERTIFICATE" in text:
        raise bad(field, "this is a certificate, not the .p8 signing key",
                  _P8_FIX + " To use a certificate instead, set ios.auth to 'certificate' and "
                  "upload the .p12 as ios.certificate_p12.")
    if "ENCRYPTED" in text:
        raise bad(field, "this private key is encrypted with a password", _P8_FIX)
    # Literal "\n" sequences come from keys JSON-escaped twice; backslash is not base64.
    body = _ARMOUR.sub("", text).replace("\\n", "").replace("\\r", "")
    body = "".join(body.split())
    try:
        der = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad(field, "is not the base64 text of a .p8 key (some characters were changed "
                  "or cut)", _P8_FIX) from exc
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise bad(field, "does not parse as a private key (the .p8 content is incomplete or "
                  "is not a key)", _P8_FIX) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise bad(field, "must be an EC P-256 key (APNs signs with ES256), this is a "
                  f"{type(key).__name__.lstrip('_')}", _P8_FIX)
    if not isinstance(key.curve, ec.SECP256R1):
        raise bad(field, "must be an EC P-256 key (APNs signs with ES256), this one uses "
                  f"the curve {key.curve.name}", _P8_FIX)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def _token(raw: Mapping[str, Any]) -> PlatformConfig:
    key_text = raw.get("signing_key")
    if key_text is not None and not isinstance(key_text, str):
        raise bad("ios.signing_key", "must be a string", _P8_FIX)
    if not key_text or not key_text.strip():
        raise bad("ios.signing_key", "is required for token auth",
                  _P8_FIX + " Or set ios.auth to 'certificate'.")
    pem = normalise_p8(key_text)
    public = {
        "auth": "token",
        "key_id": _ten_char_id(raw, "key_id", "Key ID", _KEY_ID_FIX),
        "team_id": _ten_char_id(raw, "team_id", "Team ID", _TEAM_ID_FIX),
        "bundle_id": _bundle_id(raw),
        "environment": _environment(raw),
    }
    return PlatformConfig(public=public, secret={"signing_key": pem})


def _certificate(raw: Mapping[str, Any], now: datetime) -> PlatformConfig:
    field = "ios.certificate_p12"
    text = required_text(raw, "certificate_p12", field, _P12_FIX)
    password = raw.get("certificate_password")
    if password is not None and not isinstance(password, str):
        raise bad("ios.certificate_password", "must be a string", _P12_FIX)
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad(field, "is not base64 text", _P12_FIX) from exc
    try:
        key, cert, _chain = pkcs12.load_key_and_certificates(
            data, password.encode("utf-8") if password else None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise bad(field, "could not be opened: the password is wrong or this is not a "
                  "PKCS#12 (.p12) file", _P12_FIX) from exc
    if key is None or cert is None:
        missing = "private key" if key is None else "certificate"
        raise bad(field, f"the .p12 holds no {missing}",
                  "In Keychain Access select both the certificate and its private key, then "
                  "export the 2 items as one .p12.")
    expires = cert.not_valid_after_utc
    if expires <= now:
        raise bad(field, f"the certificate expired on {iso(expires)}",
                  "Create a new Apple Push Notification service certificate in Apple Developer "
                  "→ Certificates (they last one year), or switch to token auth with a .p8 "
                  "key, which does not expire.")
    bundle_id = _bundle_id(raw)
    # Apple push certificates carry the bundle id as the subject's UID.
    uid = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
    if uid and str(uid[0].value) != bundle_id:
        raise bad("ios.bundle_id", f"the certificate is for {str(uid[0].value)!r}, not "
                  f"{bundle_id!r}", "Use the bundle id the certificate was issued for, or "
                  "upload the certificate of this app.")
    public = {
        "auth": "certificate",
        "bundle_id": bundle_id,
        "environment": _environment(raw),
        "certificate_subject": cert.subject.rfc4514_string(),
        "certificate_expires_at": iso(expires),
    }
    secret = {
        "certificate_p12": base64.b64encode(data).decode("ascii"),
        "certificate_password": password or "",
        # Ready for ssl.SSLContext.load_cert_chain, which wants PEM.
        "certificate_pem": cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        "private_key_pem": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode("ascii"),
    }
    return PlatformConfig(public=public, secret=secret)
