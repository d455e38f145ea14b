"""Every FCM answer listed in providers.md → the right outcome, and token-endpoint failures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from clarion.domain.outcomes import OutcomeKind
from clarion.providers.fcm.auth import token_failure
from clarion.providers.fcm.errors import (
    FCM_ERROR_TYPE,
    classify,
    connection_outcome,
    needs_token_refresh,
    parse_retry_after,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _err(code: int, status: str, message: str, fcm: str | None = None,
         details: list[dict[str, Any]] | None = None) -> bytes:
    items = list(details or [])
    if fcm is not None:
        items.append({"@type": FCM_ERROR_TYPE, "errorCode": fcm})
    return orjson.dumps({"error": {"code": code, "message": message, "status": status,
                                   "details": items}})


def test_success_gives_the_message_name() -> None:
    out = classify("d", 200, b'{"name": "projects/p/messages/0:1%ab"}', retry_after=None,
                   now=NOW)
    assert out.kind is OutcomeKind.ACCEPTED
    assert out.provider_id == "projects/p/messages/0:1%ab"
    assert out.delivery_id == "d"


@pytest.mark.parametrize(("status", "body", "kind", "reason", "words"), [
    (404, _err(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED"),
     OutcomeKind.INVALID_TOKEN, "UNREGISTERED", "uninstalled"),
    (400, _err(400, "INVALID_ARGUMENT",
               "The registration token is not a valid FCM registration token",
               "INVALID_ARGUMENT"),
     OutcomeKind.INVALID_TOKEN, "INVALID_ARGUMENT", "not an FCM registration token"),
    (400, _err(400, "INVALID_ARGUMENT", "Invalid registration token", "INVALID_ARGUMENT"),
     OutcomeKind.INVALID_TOKEN, "INVALID_ARGUMENT", "removed"),
    (400, _err(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
               details=[{"@type": "type.googleapis.com/google.rpc.BadRequest",
                         "fieldViolations": [{"field": "message.token",
                                              "description": "Invalid token"}]}]),
     OutcomeKind.INVALID_TOKEN, "INVALID_ARGUMENT", "removed"),
    (400, _err(400, "INVALID_ARGUMENT", "Invalid value at 'message.data[0].value' "
               "(TYPE_STRING), 1", "INVALID_ARGUMENT"),
     OutcomeKind.REJECTED, "INVALID_ARGUMENT", "message.data[0].value"),
    (400, _err(400, "INVALID_ARGUMENT", "Message is too big"),
     OutcomeKind.REJECTED, "INVALID_ARGUMENT", "as too big: shorten"),
    (400, _err(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
               details=[{"@type": "type.googleapis.com/google.rpc.BadRequest",
                         "fieldViolations": [{"field": "message.android.ttl",
                                              "description": "bad"},
                                             {"field": "not a <path>", "description": "x"}]}]),
     OutcomeKind.REJECTED, "INVALID_ARGUMENT", "(the field message.android.ttl)"),
    (403, _err(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH"),
     OutcomeKind.MISMATCH, "SENDER_ID_MISMATCH", "another Firebase project"),
    (401, _err(401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service",
               "THIRD_PARTY_AUTH_ERROR"),
     OutcomeKind.CREDENTIAL_ERROR, "THIRD_PARTY_AUTH_ERROR", "APNs credentials"),
    (401, _err(401, "UNAUTHENTICATED", "APNs auth", "APNS_AUTH_ERROR"),
     OutcomeKind.CREDENTIAL_ERROR, "APNS_AUTH_ERROR", "APNs"),
    (401, _err(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
     OutcomeKind.CREDENTIAL_ERROR, "UNAUTHENTICATED", "service account key"),
    (401, b"<html>nope</html>", OutcomeKind.CREDENTIAL_ERROR, "UNAUTHENTICATED", "clock"),
    (403, _err(403, "PERMISSION_DENIED", "Permission 'cloudmessaging.messages.create' "
               "denied"), OutcomeKind.CREDENTIAL_ERROR, "PERMISSION_DENIED", "project"),
    (409, _err(409, "ABORTED", "weird"), OutcomeKind.REJECTED, "ABORTED", "HTTP 409"),
    (418, b"I am a teapot", OutcomeKind.REJECTED, "418", "HTTP 418"),
    (400, _err(400, "MADE_UP", "MADE_UP text", "ALSO_MADE_UP"), OutcomeKind.REJECTED, "400",
     "HTTP 400"),
    (400, b"", OutcomeKind.REJECTED, "400", "empty body"),
])
def test_errors_are_classified(status: int, body: bytes, kind: OutcomeKind, reason: str,
                               words: str) -> None:
    out = classify("d", status, body, retry_after=None, now=NOW)
    assert (out.kind, out.reason) == (kind, reason)
    assert out.detail is not None
    assert words in out.detail
    assert out.retry_after_seconds is None
    # FCM's free text picks the sentence; it is never copied into it.
    error = orjson.loads(body).get("error", {}) if body.startswith(b"{") else {}
    said = error.get("message") or body.decode()
    if said:
        assert said not in out.detail
    assert "MADE_UP" not in out.detail


@pytest.mark.parametrize(("status", "fcm", "grpc"), [
    (429, "QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED"),
    (503, "UNAVAILABLE", "UNAVAILABLE"),
    (500, "INTERNAL", "INTERNAL"),
])
def test_retryable_errors_honour_retry_after(status: int, fcm: str, grpc: str) -> None:
    body = _err(status, grpc, "try later", fcm)
    out = classify("d", status, body, retry_after="17", now=NOW)
    assert (out.kind, out.reason, out.retry_after_seconds) == (OutcomeKind.RETRY_LATER, fcm,
                                                               17.0)
    dated = classify("d", status, body, retry_after="Sun, 01 Mar 2026 12:01:30 GMT", now=NOW)
    assert dated.retry_after_seconds == 90.0
    bare = classify("d", status, body, retry_after=None, now=NOW)
    assert bare.kind is OutcomeKind.RETRY_LATER
    assert bare.retry_after_seconds is None


def test_fcm_error_code_wins_over_the_grpc_status() -> None:
    # SENDER_ID_MISMATCH arrives with status PERMISSION_DENIED: the FcmError decides.
    body = _err(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH")
    assert classify("d", 403, body, retry_after=None, now=NOW).kind is OutcomeKind.MISMATCH
    # ... and THIRD_PARTY_AUTH_ERROR arrives as UNAUTHENTICATED but is not our token.
    third = _err(401, "UNAUTHENTICATED", "x", "THIRD_PARTY_AUTH_ERROR")
    assert needs_token_refresh(401, third) is False


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_a_proxy_error_page_is_retried(status: int) -> None:
    out = classify("d", status, b"<html>Bad Gateway</html>", retry_after="3", now=NOW)
    assert out.kind is OutcomeKind.RETRY_LATER
    assert out.reason == str(status)
    assert out.retry_after_seconds == 3.0


def test_only_a_401_about_our_token_triggers_a_refresh() -> None:
    assert needs_token_refresh(401, _err(401, "UNAUTHENTICATED", "expired")) is True
    assert needs_token_refresh(401, b"") is True
    assert needs_token_refresh(403, _err(403, "PERMISSION_DENIED", "no")) is False
    assert needs_token_refresh(200, b'{"name": "x"}') is False


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), ("5", 5.0), (" 2.5 ", 2.5), ("-3", 0.0), ("inf", None), ("soon", None),
    ("Sun, 01 Mar 2026 12:00:10 GMT", 10.0), ("Sun, 01 Mar 2026 11:00:00 GMT", 0.0),
])
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_no_answer_is_retry_later_and_says_which() -> None:
    timeout = connection_outcome("d", timeout=True, error="timeout")
    assert (timeout.kind, timeout.reason) == (OutcomeKind.RETRY_LATER, "Timeout")
    assert timeout.detail is not None
    assert "twice" in timeout.detail
    refused = connection_outcome("d", timeout=False, error="refused", host="http://x:1")
    assert (refused.kind, refused.reason) == (OutcomeKind.RETRY_LATER, "ConnectionError")
    assert refused.detail is not None
    assert "http://x:1" in refused.detail


def _oauth_error(error: str, description: str) -> bytes:
    return orjson.dumps({"error": error, "error_description": description})


@pytest.mark.parametrize(("error", "description", "reason", "words"), [
    ("invalid_grant", "Invalid JWT Signature.", "invalid_grant",
     "key was deleted or disabled in Google Cloud: generate a new key and update the app"),
    ("invalid_grant", "Invalid grant: account not found", "invalid_grant",
     "service account was deleted or disabled"),
    ("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
     "reasonable timeframe. Check your iat and exp values in the JWT claim.", "invalid_grant",
     "clock"),
    ("invalid_scope", "Invalid OAuth scope or ID token audience provided.", "invalid_scope",
     "scope"),
    ("unauthorized_client", "Client is unauthorized", "unauthorized_client", "disabled"),
    ("invalid_request", "something else", "invalid_request", "Generate new private key"),
    ("made_up_code", "MARKER-7f3a", "TokenRefused", "Generate new private key"),
])
def test_a_refused_service_account_is_a_credential_error_naming_the_fix(
        error: str, description: str, reason: str, words: str) -> None:
    failure = token_failure(400, _oauth_error(error, description),
                            "https://oauth2.googleapis.com/token")
    assert (failure.kind, failure.reason) == (OutcomeKind.CREDENTIAL_ERROR, reason)
    assert words in failure.detail
    assert failure.detail.startswith("the OAuth token endpoint oauth2.googleapis.com answered "
                                     "400")
    # The endpoint's own words choose the explanation; they never reach the tenant.
    assert description not in failure.detail
    assert "made_up_code" not in failure.detail


@pytest.mark.parametrize(("status", "body"), [
    (503, _oauth_error("server_error", "MARKER busy")), (429, b"MARKER"), (500, b""),
    (400, _oauth_error("temporarily_unavailable", "MARKER")),
])
def test_an_unavailable_token_endpoint_is_retry_later(status: int, body: bytes) -> None:
    failure = token_failure(status, body, "https://t:8443/token")
    assert (failure.kind, failure.reason) == (OutcomeKind.RETRY_LATER,
                                              "TokenEndpointUnavailable")
    assert "t:8443" in failure.detail
    assert str(status) in failure.detail
    assert "MARKER" not in failure.detail


def test_a_redirect_from_the_token_endpoint_is_a_failure_not_followed() -> None:
    failure = token_failure(307, b"", "https://oauth2.googleapis.com/token")
    assert failure.kind is OutcomeKind.RETRY_LATER
    assert "307" in failure.detail
    assert "does not follow" in failure.detail


def test_a_non_json_refusal_is_described_without_its_body() -> None:
    failure = token_failure(403, b"<html>MARKER proxy says no</html>",
                            "https://oauth2.googleapis.com/token")
    assert (failure.kind, failure.reason) == (OutcomeKind.CREDENTIAL_ERROR, "TokenRefused")
    assert "403" in failure.detail
    assert "MARKER" not in failure.detail
