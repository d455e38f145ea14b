"""Every push service answer in providers.md (and the services' own wordings) → one outcome."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from clarion.domain.outcomes import OutcomeKind
from clarion.providers.webpush.errors import classify, connection_failure, parse_retry_after

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _mozilla(code: int, message: str, errno: int | None = 109) -> str:
    return json.dumps({"code": code, "errno": errno, "error": "x", "message": message,
                       "more_info": "https://example.invalid"})


@pytest.mark.parametrize("status", [200, 201, 202])
def test_success_is_accepted_with_the_message_location(status: int) -> None:
    out = classify("d1", status, headers={"Location": "https://push.example/m/abc"})
    assert out.kind is OutcomeKind.ACCEPTED
    assert out.provider_id == "https://push.example/m/abc"
    assert out.delivery_id == "d1"
    assert classify("d1", status).provider_id is None


@pytest.mark.parametrize(("status", "body"), [
    (404, _mozilla(404, "Request did not validate invalid token", 102)),
    (410, _mozilla(410, "Subscription is no longer valid", 106)),
    (410, ""),
    (404, "Not Found"),
])
def test_gone_subscriptions_are_invalid_tokens(status: int, body: str) -> None:
    out = classify("d", status, body=body)
    assert out.kind is OutcomeKind.INVALID_TOKEN
    assert out.reason == str(status)
    assert "subscri" in (out.detail or "")


def test_apple_unregistered_keeps_apples_reason() -> None:
    out = classify("d", 410, body='{"reason":"Unregistered"}')
    assert (out.kind, out.reason) == (OutcomeKind.INVALID_TOKEN, "Unregistered")


def test_413_is_a_permanent_payload_too_large() -> None:
    out = classify("d", 413, body=_mozilla(413, "Data payload must be smaller than 4096", 104))
    assert (out.kind, out.reason) == (OutcomeKind.REJECTED, "PayloadTooLarge")
    assert "4096" in (out.detail or "")


def test_429_honours_retry_after_seconds() -> None:
    out = classify("d", 429, headers={"Retry-After": "120"})
    assert (out.kind, out.retry_after_seconds) == (OutcomeKind.RETRY_LATER, 120.0)
    assert "rate limit" in (out.detail or "")


def test_429_honours_retry_after_http_date() -> None:
    out = classify("d", 429, headers={"Retry-After": "Thu, 01 Jan 2026 12:00:30 GMT"}, now=NOW)
    assert out.retry_after_seconds == 30.0


def test_429_without_retry_after_leaves_the_delay_to_backoff() -> None:
    out = classify("d", 429)
    assert out.kind is OutcomeKind.RETRY_LATER
    assert out.retry_after_seconds is None


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_server_trouble_is_retried_later(status: int) -> None:
    out = classify("d", status, headers={"Retry-After": "7"})
    assert (out.kind, out.retry_after_seconds) == (OutcomeKind.RETRY_LATER, 7.0)
    assert out.reason == str(status)


def test_plain_400_is_rejected_with_its_documented_errno() -> None:
    out = classify("d", 400, body=_mozilla(400, "Missing TTL header", 111))
    assert out.kind is OutcomeKind.REJECTED
    assert "autopush errno 111" in (out.detail or "")
    assert "Missing TTL header" not in (out.detail or "")


@pytest.mark.parametrize(("status", "body"), [
    # Mozilla autopush: 401 errno 109 "VAPID public key mismatch"
    (401, _mozilla(401, "VAPID public key mismatch")),
    # FCM (Chrome): 403 with the "do not correspond" sentence, as plain text
    (403, "the VAPID credentials in the authorization header do not correspond to the "
          "credentials used to create the subscriptions."),
    # Apple: a JSON reason, on 400 or 403
    (400, '{"reason":"VapidPkHashMismatch"}'),
    (403, '{"reason":"VapidPkHashMismatch"}'),
    # FCM legacy wording
    (400, "UnauthorizedRegistration"),
    # a 403 without words: per RFC 8292 §4.2 and FCM, the key does not match the subscription
    (403, ""),
    (403, "Forbidden"),
])
def test_key_mismatch_is_a_per_subscription_mismatch(status: int, body: str) -> None:
    out = classify("d", status, body=body)
    assert out.kind is OutcomeKind.MISMATCH
    assert "applicationServerKey" in (out.detail or "")


@pytest.mark.parametrize(("status", "body"), [
    (401, ""),  # Mozilla's default for a refused JWT
    (401, _mozilla(401, "Invalid VAPID token: signature")),
    (401, _mozilla(401, "Invalid VAPID audience")),
    (401, _mozilla(401, "Invalid VAPID expiry")),
    (401, _mozilla(401, "The VAPID token expiration is too long")),
    (401, _mozilla(401, "Missing VAPID token")),
    (401, _mozilla(401, "Unknown auth scheme")),
    (403, '{"reason":"BadJwtToken"}'),  # Apple: e.g. sub mailto:x@localhost
    (403, '{"reason":"ExpiredJwtToken"}'),
    (403, "permission denied: invalid JWT provided"),  # FCM
    (400, '{"reason":"BadJwtToken"}'),
])
def test_refused_jwt_is_a_credential_error(status: int, body: str) -> None:
    out = classify("d", status, body=body)
    assert out.kind is OutcomeKind.CREDENTIAL_ERROR
    assert "vapid_subject" in (out.detail or "")


def test_apple_reason_is_the_outcome_reason() -> None:
    assert classify("d", 403, body='{"reason":"BadJwtToken"}').reason == "BadJwtToken"
    assert classify("d", 401, body=_mozilla(401, "x")).reason == "401"


@pytest.mark.parametrize("status", [301, 405, 415, 418])
def test_unknown_answers_are_permanent_and_say_the_status_not_the_body(status: int) -> None:
    out = classify("d", status, body="teapot says no")
    assert out.kind is OutcomeKind.REJECTED
    assert str(status) in (out.detail or "")
    assert "teapot says no" not in (out.detail or "")


@pytest.mark.parametrize(("status", "body"), [
    (400, '{"reason": "MARKERReason"}'), (400, '{"message": "MARKER", "errno": 4242}'),
    (410, "MARKER"), (413, "MARKER"), (429, "MARKER"), (503, '{"reason": "MARKER"}'),
    (401, '{"message": "MARKER Invalid VAPID token"}'),
    (403, '{"message": "MARKER do not correspond to the credentials used to create"}'),
])
def test_no_remote_text_reaches_the_outcome(status: int, body: str) -> None:
    out = classify("d", status, body=body)
    assert "MARKER" not in (out.detail or "")
    assert "MARKER" not in (out.reason or "")


def test_long_bodies_are_cut_in_the_detail() -> None:
    out = classify("d", 400, body="x" * 10_000)
    assert len(out.detail or "") < 500


@pytest.mark.parametrize(("value", "expected"), [
    ("0", 0.0), ("3.5", 3.5), ("-4", 0.0), ("soon", None), ("", None), (None, None),
    ("nan", None), ("Thu, 01 Jan 2026 11:59:00 GMT", 0.0),
])
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(("reason", "words"), [
    ("Timeout", "no answer came in time"),
    ("ConnectionError", "connection failed"),
    ("TLSError", "CLARION_CA_FILE"),
])
def test_connection_failures_are_retried_with_their_reason(reason: str, words: str) -> None:
    out = connection_failure("d", reason, "boom")
    assert (out.kind, out.reason) == (OutcomeKind.RETRY_LATER, reason)
    assert words in (out.detail or "")
    assert "boom" in (out.detail or "")
