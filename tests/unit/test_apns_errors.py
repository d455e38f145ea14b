"""APNs answers → outcomes: every reason Apple documents (and providers.md lists)."""

from __future__ import annotations

import email.utils
import ssl

import orjson
import pytest

from clarion.domain.outcomes import OutcomeKind
from clarion.providers.apns.errors import classify, known_reasons, local_outcome, parse_retry_after
from clarion.providers.apns.transport import tls_error

pytestmark = pytest.mark.unit

K = OutcomeKind
# (status, reason, expected kind) — written from Apple's table, not from the code under test.
EXPECTED = [
    (410, "Unregistered", K.INVALID_TOKEN),
    (410, "ExpiredToken", K.INVALID_TOKEN),
    (400, "BadDeviceToken", K.MISMATCH),
    (400, "DeviceTokenNotForTopic", K.MISMATCH),
    (429, "TooManyRequests", K.RETRY_LATER),
    (500, "InternalServerError", K.RETRY_LATER),
    (503, "ServiceUnavailable", K.RETRY_LATER),
    (503, "Shutdown", K.RETRY_LATER),
    (429, "TooManyProviderTokenUpdates", K.RETRY_LATER),
    (400, "IdleTimeout", K.RETRY_LATER),
    (403, "InvalidProviderToken", K.CREDENTIAL_ERROR),
    (403, "ExpiredProviderToken", K.CREDENTIAL_ERROR),
    (403, "MissingProviderToken", K.CREDENTIAL_ERROR),
    (403, "BadCertificate", K.CREDENTIAL_ERROR),
    (403, "BadCertificateEnvironment", K.CREDENTIAL_ERROR),
    (403, "UnrelatedKeyIdInToken", K.CREDENTIAL_ERROR),
    (403, "BadEnvironmentKeyInToken", K.CREDENTIAL_ERROR),
    (403, "BadEnvironmentKeyIdInToken", K.CREDENTIAL_ERROR),
    (413, "PayloadTooLarge", K.REJECTED),
    (400, "PayloadEmpty", K.REJECTED),
    (400, "BadTopic", K.REJECTED),
    (400, "MissingTopic", K.REJECTED),
    (400, "TopicDisallowed", K.REJECTED),
    (400, "BadPriority", K.REJECTED),
    (400, "BadExpirationDate", K.REJECTED),
    (400, "BadCollapseId", K.REJECTED),
    (400, "BadMessageId", K.REJECTED),
    (400, "InvalidPushType", K.REJECTED),
    (400, "MissingPushType", K.REJECTED),
    (400, "DuplicateHeaders", K.REJECTED),
    (400, "MissingDeviceToken", K.REJECTED),
    (404, "BadPath", K.REJECTED),
    (405, "MethodNotAllowed", K.REJECTED),
    (403, "Forbidden", K.REJECTED),
]


def _body(reason: str, **extra: object) -> bytes:
    return orjson.dumps({"reason": reason, **extra})


@pytest.mark.parametrize(("status", "reason", "kind"), EXPECTED)
def test_every_documented_reason(status: int, reason: str, kind: OutcomeKind) -> None:
    out = classify("d1", status, _body(reason), environment="production", topic="com.c.app",
                   apns_id="A-1")
    assert out.kind is kind
    assert out.reason == reason
    assert out.delivery_id == "d1"
    assert out.detail
    assert out.detail.startswith(f"APNs answered {reason}: ")
    assert out.provider_id == "A-1"
    if kind is K.RETRY_LATER:
        assert out.retry_after_seconds
        assert out.retry_after_seconds > 0
    else:
        assert out.retry_after_seconds is None


def test_the_table_covers_exactly_the_expected_reasons() -> None:
    assert known_reasons() == {reason for _, reason, _ in EXPECTED}


def test_success() -> None:
    out = classify("d1", 200, b"", apns_id="id-1")
    assert (out.kind, out.provider_id, out.reason) == (K.ACCEPTED, "id-1", None)


@pytest.mark.parametrize(("environment", "other"), [("production", "sandbox"),
                                                    ("sandbox", "production")])
def test_bad_device_token_names_the_apps_environment(environment: str, other: str) -> None:
    out = classify("d", 400, _body("BadDeviceToken"), environment=environment)
    assert out.detail is not None
    assert f"the {environment} environment the app is configured for" in out.detail
    assert f"probably a {other} token" in out.detail


def test_wrong_app_names_the_topic() -> None:
    out = classify("d", 400, _body("DeviceTokenNotForTopic"), topic="com.contoso.app")
    assert out.detail is not None
    assert "com.contoso.app" in out.detail


def test_retry_after_header_is_honoured() -> None:
    out = classify("d", 503, _body("ServiceUnavailable"), retry_after=b"42")
    assert out.retry_after_seconds == 42.0


@pytest.mark.parametrize(("reason", "seconds"), [("InternalServerError", 1.0),
                                                 ("ServiceUnavailable", 5.0),
                                                 ("TooManyRequests", 5.0)])
def test_suggested_waits_without_retry_after(reason: str, seconds: float) -> None:
    assert classify("d", 500, _body(reason)).retry_after_seconds == seconds


def test_http_date_retry_after() -> None:
    date = email.utils.formatdate(1_000_100, usegmt=True)
    assert parse_retry_after(date, now=1_000_000) == pytest.approx(100)
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None


def test_unknown_4xx_is_rejected_with_its_status_and_the_reason_goes_to_the_log(
        caplog: pytest.LogCaptureFixture) -> None:
    out = classify("d", 400, b'{"reason":"SomethingNew"}')
    assert out.kind is K.REJECTED
    assert out.reason == "400"
    assert out.detail is not None
    assert "SomethingNew" not in out.detail  # remote text never reaches the tenant
    assert "400" in out.detail
    assert "SomethingNew" in caplog.text  # the operator can look it up


def test_unknown_body_keeps_the_status_as_reason() -> None:
    out = classify("d", 418, b"<html>teapot</html>")
    assert (out.kind, out.reason) == (K.REJECTED, "418")
    assert out.detail is not None
    assert "teapot" not in out.detail
    assert "418" in out.detail


@pytest.mark.parametrize("status", [502, 504, 429])
def test_unknown_5xx_and_429_are_passing(status: int) -> None:
    out = classify("d", status, b"bad gateway", retry_after=b"7")
    assert (out.kind, out.retry_after_seconds) == (K.RETRY_LATER, 7.0)


# --- failures without an APNs answer ---------------------------------------------------------


def _ssl_error(text: str) -> ssl.SSLError:
    return ssl.SSLError(1, text)


@pytest.mark.parametrize("text", ["[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca",
                                  "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate",
                                  "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert "
                                  "certificate required",
                                  "[SSL: SSLV3_ALERT_CERTIFICATE_EXPIRED] sslv3 alert "
                                  "certificate expired"])
def test_certificate_alerts_under_certificate_auth_are_credential_errors(text: str) -> None:
    error = tls_error(_ssl_error(text), credential_auth=True)
    assert (error.reason, error.credential) == ("BadCertificate", True)
    assert ".p12" in error.detail
    # The same alert under token auth is not the app's certificate.
    assert tls_error(_ssl_error(text), credential_auth=False).credential is False


def test_untrusted_server_says_how_to_trust_it() -> None:
    error = tls_error(ssl.SSLCertVerificationError(1, "certificate verify failed"),
                      credential_auth=False)
    assert error.reason == "TLSError"
    assert "CLARION_CA_FILE" in error.detail


def test_other_failures_are_connection_errors() -> None:
    error = tls_error(ConnectionResetError("reset by peer"), credential_auth=True)
    assert (error.reason, error.credential) == ("ConnectionError", False)
    assert "reset by peer" in error.detail


def test_local_outcomes_suggest_a_wait_only_when_passing() -> None:
    assert local_outcome("d", K.RETRY_LATER, "Timeout", "x").retry_after_seconds == 5.0
    assert local_outcome("d", K.RETRY_LATER, "ConnectionError", "x").retry_after_seconds == 1.0
    assert local_outcome("d", K.REJECTED, "PayloadTooLarge", "x").retry_after_seconds is None
