"""Validation and normalisation of an app's provider credentials (pure: no I/O).

Each ``validate_*`` takes what a person typed or uploaded for one platform and returns a
``PlatformConfig``: a *public* half (safe to show, stored in clear) and a *secret* half (stored
only inside the encrypted blob, never returned). Anything wrong raises ``InvalidInput`` naming
the field (``android.service_account.private_key``), what is wrong and how to fix it.

Keys are parsed with ``cryptography`` (what the senders sign with), so a key accepted here is a
key the senders can load. What is hand-written is the reading of what people paste and the
hints for common mix-ups (google-services.json instead of a service account, a legacy FCM
server key, a public VAPID key without its private key): a parser cannot give those.

iOS lives in ``ios_credentials`` (re-exported here); shared helpers in ``credential_input``.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from clarion.domain import text as input_text
from clarion.domain.credential_input import (
    INPUT_FIELDS,
    PlatformConfig,
    as_object,
    b64url,
    b64url_decode,
    bad,
    reject_unknown,
    required_text,
)
from clarion.domain.ios_credentials import (
    IOS_AUTH_MODES,
    IOS_ENVIRONMENTS,
    ios_auth,
    normalise_p8,
    validate_ios,
)
from clarion.domain.outcomes import Platform

__all__ = [
    "GOOGLE_TOKEN_URIS",
    "INPUT_FIELDS",
    "IOS_AUTH_MODES",
    "IOS_ENVIRONMENTS",
    "PlatformConfig",
    "check_token_uri",
    "merge_for_update",
    "normalise_p8",
    "token_uri_refusal",
    "validate_android",
    "validate_ios",
    "validate_platform",
    "validate_web",
    "vapid_public_key",
]

_PROJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:_-]{0,99}")


# --- Android (FCM HTTP v1) -----------------------------------------------------------------

_SA_FIX = ("In the Firebase console open Project settings → Service accounts → Generate new "
           "private key and upload that JSON as android.service_account.")


def _service_account(value: Any) -> Mapping[str, Any]:
    field = "android.service_account"
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("AAAA", "AIza")) and "{" not in text:
            raise bad(field, "this is a legacy FCM server key or API key; Google shut the "
                      "legacy FCM API down and FCM HTTP v1 needs a service account", _SA_FIX)
        # orjson, nesting bounded (json.loads raised RecursionError at 1,000 levels: a 500)
        value = input_text.loads(text, what=field, fix=_SA_FIX)
    if value is None:
        raise bad(field, "is required", _SA_FIX)
    if not isinstance(value, Mapping):
        raise bad(field, "must be the service account JSON object, not "
                  f"{type(value).__name__}", _SA_FIX)
    if "project_info" in value or "client" in value:
        raise bad(field, "this is the Firebase client config file (google-services.json), "
                  "not a service account", _SA_FIX)
    kind = value.get("type")
    if kind != "service_account":
        raise bad(f"{field}.type", f"must be 'service_account', got {str(kind)[:40]!r}"
                  if kind is not None else "is missing: this JSON is not a service account key",
                  _SA_FIX)
    return value


def _token_uri(value: str) -> str:
    """Its form only: which token endpoints Clarion posts to is ``check_token_uri``'s rule
    (it needs the operator's CLARION_FCM_URL)."""
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = urlsplit("")
    if parts.scheme in ("https", "http") and parts.hostname:
        return value
    raise bad("android.service_account.token_uri", f"{value[:100]!r} is not an http(s) URL",
              _TOKEN_URI_FIX)


# Google's OAuth 2.0 token endpoints for service accounts: the one in every key Google hands out
# today, and the two older ones that keys generated years ago still name.
GOOGLE_TOKEN_URIS = frozenset({
    "https://oauth2.googleapis.com/token",
    "https://accounts.google.com/o/oauth2/token",
    "https://www.googleapis.com/oauth2/v4/token",
})
_TOKEN_URI_FIX = ("Keep the token_uri of the key Google generated "
                  "(https://oauth2.googleapis.com/token). An emulator's token endpoint must be "
                  "on the origin of CLARION_FCM_URL, which the operator sets.")


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower().rstrip("."), port or (
        443 if parts.scheme == "https" else 80)


def token_uri_refusal(token_uri: str, *, fcm_url: str | None) -> str | None:
    """Why Clarion will not post a service account's assertion to ``token_uri``, or None.

    The token endpoint is a URL inside a tenant's upload, and Clarion POSTs to it: only
    Google's token endpoints (exactly) or the origin of the operator's ``CLARION_FCM_URL`` (an
    emulator) are accepted, so the upload cannot aim Clarion at anything else."""
    text = token_uri.strip()
    if text in GOOGLE_TOKEN_URIS:
        return None
    unusual = any(c.isspace() or c in "\\@" or not c.isprintable() or not c.isascii()
                  for c in text)
    mine = _origin(text)
    if fcm_url and not unusual and mine is not None and mine == _origin(fcm_url):
        return None
    shown = f"{text[:100]!r}"
    if fcm_url:
        return (f"{shown} is neither Google's token endpoint nor on the origin of "
                f"CLARION_FCM_URL")
    return f"{shown} is not Google's token endpoint (and CLARION_FCM_URL is not set)"


def check_token_uri(token_uri: str, *, fcm_url: str | None) -> None:
    """``token_uri_refusal`` as a 400 naming the field."""
    refusal = token_uri_refusal(token_uri, fcm_url=fcm_url)
    if refusal is not None:
        raise bad("android.service_account.token_uri", refusal, _TOKEN_URI_FIX)


def validate_android(raw: Any) -> PlatformConfig:
    """FCM HTTP v1: a Google service account key (never google-services.json)."""
    android = as_object(raw, "android", '{"service_account": {...}}')
    if android.get("type") == "service_account" or "project_info" in android:
        raise bad("android.service_account", "the JSON file was given as the whole android "
                  "object", 'Send {"android": {"service_account": <the JSON>}}. ' + _SA_FIX)
    reject_unknown(android, Platform.ANDROID)
    sa = dict(_service_account(android.get("service_account")))
    prefix = "android.service_account."
    project_id = required_text(sa, "project_id", prefix + "project_id", _SA_FIX)
    if not _PROJECT_ID.fullmatch(project_id):
        raise bad(prefix + "project_id", f"{project_id[:100]!r} is not a Google Cloud "
                  "project id", _SA_FIX)
    client_email = required_text(sa, "client_email", prefix + "client_email", _SA_FIX)
    if "@" not in client_email or any(c.isspace() for c in client_email):
        raise bad(prefix + "client_email", f"{client_email[:100]!r} is not an email address",
                  _SA_FIX)
    token_uri = _token_uri(required_text(sa, "token_uri", prefix + "token_uri", _SA_FIX))
    key_text = required_text(sa, "private_key", prefix + "private_key", _SA_FIX)
    key_text = key_text.replace("\\n", "\n") + "\n"  # a key JSON-escaped twice
    try:
        key = serialization.load_pem_private_key(key_text.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise bad(prefix + "private_key", "does not parse as a PEM private key (the JSON "
                  "was edited or truncated)", _SA_FIX) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise bad(prefix + "private_key", "must be an RSA key (Google signs service account "
                  "tokens with RS256)", _SA_FIX)
    sa.update(project_id=project_id, client_email=client_email, token_uri=token_uri,
              private_key=key_text)
    block = android.get("notification_block", False)
    if not isinstance(block, bool):
        raise bad("android.notification_block", "must be true or false",
                  "Set it to true to send FCM notification messages (shown by the system), "
                  "false for data messages handled by the app.")
    public = {"project_id": project_id, "client_email": client_email, "token_uri": token_uri,
              "notification_block": block}
    return PlatformConfig(public=public, secret={"service_account": sa})


# --- Web Push (RFC 8292 VAPID) -------------------------------------------------------------

_VAPID_FIX = ("Omit vapid_private_key to have a key pair generated, or give the raw 32-byte "
              "P-256 private key in base64url (as `npx web-push generate-vapid-keys` prints it) "
              "or a PEM EC private key.")


def _vapid_subject(raw: Mapping[str, Any]) -> str:
    # RFC 8292 §2.1: "sub" is a mailto: or https: URI the push service can contact.
    fix = "Use mailto:you@example.com or an https:// URL where the push service can reach you."
    value = required_text(raw, "vapid_subject", "web.vapid_subject", fix)
    # urlsplit drops tabs and line breaks silently: refuse every control character first
    input_text.controls(value, "web.vapid_subject")
    if value.startswith("mailto:") and re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value[7:]):
        return value
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    raise bad("web.vapid_subject", f"{value[:100]!r} is not a mailto: or https: URI", fix)


def _vapid_key(text: str) -> ec.EllipticCurvePrivateKey:
    field = "web.vapid_private_key"
    try:
        if "-----BEGIN" in text:
            key: Any = serialization.load_pem_private_key(text.encode("utf-8"), password=None)
        else:
            raw = b64url_decode(text)
            if len(raw) == 32:  # the raw scalar, as web-push and py_vapid print it
                key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
            else:
                key = serialization.load_der_private_key(raw, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm, binascii.Error) as exc:
        raise bad(field, "is not a P-256 private key", _VAPID_FIX) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve,
                                                                         ec.SECP256R1):
        raise bad(field, "must be an EC P-256 key (VAPID signs with ES256)", _VAPID_FIX)
    return key


def vapid_public_key(key: ec.EllipticCurvePrivateKey) -> str:
    """The uncompressed point in base64url without padding: the ``applicationServerKey``
    browsers take in ``pushManager.subscribe`` and the ``k=`` of RFC 8292 §3.2."""
    point = key.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    return b64url(point)


def validate_web(raw: Any) -> PlatformConfig:
    """Web Push: a VAPID subject and key pair (generated when no private key is given)."""
    web = as_object(raw, "web", '{"vapid_subject": "mailto:ops@example.com"}')
    reject_unknown(web, Platform.WEB)
    subject = _vapid_subject(web)
    private_text = web.get("vapid_private_key")
    public_text = web.get("vapid_public_key")
    for name, value in (("vapid_private_key", private_text), ("vapid_public_key", public_text)):
        if value is not None and not isinstance(value, str):
            raise bad(f"web.{name}", "must be a string", _VAPID_FIX)
    if private_text and private_text.strip():
        key = _vapid_key(private_text.strip())
    elif public_text and public_text.strip():
        raise bad("web.vapid_public_key", "was given without its private key (a public key "
                  "alone cannot sign)", "Also send web.vapid_private_key, or omit both to "
                  "have a key pair generated.")
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    public_key = vapid_public_key(key)
    if public_text and public_text.strip().rstrip("=") != public_key:
        raise bad("web.vapid_public_key", "does not belong to web.vapid_private_key",
                  "Omit vapid_public_key (it is derived from the private key) or send the "
                  "matching one.")
    raw_private = key.private_numbers().private_value.to_bytes(32, "big")
    return PlatformConfig(public={"vapid_subject": subject, "vapid_public_key": public_key},
                          secret={"vapid_private_key": b64url(raw_private)})


# --- every platform ------------------------------------------------------------------------


def validate_platform(platform: Platform, raw: Any, *, now: datetime) -> PlatformConfig:
    """Validate one platform's input; ``now`` decides whether a certificate has expired."""
    if platform is Platform.IOS:
        return validate_ios(raw, now=now)
    if platform is Platform.ANDROID:
        return validate_android(raw)
    return validate_web(raw)


def merge_for_update(platform: Platform, stored: Mapping[str, Any] | None, update: Any) -> Any:
    """The input to re-validate when an update names a platform the app already has.

    ``stored`` is the stored public half merged with the decrypted secret half. Fields the
    update leaves out are kept, so a person can change the iOS environment without pasting the
    write-only ``.p8`` again, and a Web app keeps its VAPID keys (new keys would orphan every
    browser subscription). Switching ``ios.auth`` starts from scratch; a new VAPID private key
    drops the stored public key."""
    if stored is None or not isinstance(update, Mapping):
        return update
    base = {k: v for k, v in stored.items() if k in INPUT_FIELDS[platform]}
    if platform is Platform.IOS and (ios_auth(update) or base.get("auth")) != base.get("auth"):
        return update
    if platform is Platform.WEB and "vapid_private_key" in update:
        base.pop("vapid_public_key", None)
    return {**base, **update}
