from __future__ import annotations

import base64
import json
import os

import pytest

from clarion.domain import registration as reg
from clarion.domain.netguard import check_url
from clarion.errors import InvalidInput

pytestmark = pytest.mark.unit

APP = "7d9b7a35-6c2e-4c8e-9d0e-0a4f5b8f6f01"
USER = "1b0c3e8a-3b7e-4c55-9a2f-8f1c0b9f2a10"


def _b64u(n: int) -> str:
    return base64.urlsafe_b64encode(os.urandom(n)).rstrip(b"=").decode()


def test_parse_apns_body_exactly_as_cij_sends_it() -> None:
    r = reg.parse_device({"MobileAppId": APP, "UserId": USER, "ApiToken": "tok",
                          "ApnsDeviceToken": "ABCDEF0123"})
    assert r.token_kind is reg.TokenKind.APNS
    assert r.token == "abcdef0123"  # hex is case-insensitive: stored lower-cased
    assert (r.mobile_app_id, r.user_id, r.api_token) == (APP, USER, "tok")


def test_keys_are_case_insensitive_like_cij() -> None:
    r = reg.parse_device({"mobileAppId": APP, "userid": USER, "APITOKEN": "t",
                          "fcmDeviceToken": "fcm:token-1"})
    assert r.token_kind is reg.TokenKind.FCM
    assert r.token == "fcm:token-1"


def test_web_push_subscription_is_a_third_token_kind() -> None:
    sub = {"endpoint": "https://push.example.net/abc", "keys": {"p256dh": _b64u(65),
                                                                "auth": _b64u(16)}}
    r = reg.parse_device({"MobileAppId": APP, "UserId": USER, "ApiToken": "t",
                          "WebPushSubscription": sub})
    assert r.token_kind is reg.TokenKind.WEBPUSH
    assert r.token == "https://push.example.net/abc"
    assert r.web_keys == sub["keys"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ([], "JSON object"),
        ({"MobileAppId": APP, "UserId": USER, "ApiToken": "t"}, "exactly one"),
        ({"MobileAppId": APP, "UserId": USER, "ApiToken": "t", "ApnsDeviceToken": "ab",
          "FcmDeviceToken": "x"}, "exactly one"),
        ({"MobileAppId": "nope", "UserId": USER, "ApiToken": "t", "ApnsDeviceToken": "ab"},
         "not a GUID"),
        ({"MobileAppId": APP, "ApiToken": "t", "ApnsDeviceToken": "ab"}, "UserId"),
        ({"MobileAppId": APP, "UserId": USER, "ApnsDeviceToken": "ab"}, "ApiToken"),
        ({"MobileAppId": APP, "UserId": USER, "ApiToken": "t", "ApnsDeviceToken": 12}, "string"),
        ({"MobileAppId": APP, "UserId": USER, "ApiToken": "t",
          "WebPushSubscription": {"endpoint": "https://x", "keys": {"p256dh": "AA", "auth": "BB"}}},
         "p256dh"),
    ],
)
def test_malformed_bodies_are_refused_with_the_field_named(body: object, needle: str) -> None:
    with pytest.raises(InvalidInput) as info:
        reg.parse_device(body)
    assert needle in str(info.value)


def test_batch_limits() -> None:
    item = {"MobileAppId": APP, "UserId": USER, "ApiToken": "t", "FcmDeviceToken": "x"}
    assert len(reg.parse_device_batch([item] * 100)) == 100
    with pytest.raises(InvalidInput, match="at most 100"):
        reg.parse_device_batch([item] * 101)
    with pytest.raises(InvalidInput, match="non-empty JSON array"):
        reg.parse_device_batch([])
    with pytest.raises(InvalidInput, match="item 1"):
        reg.parse_device_batch([item, {"MobileAppId": APP}])


def test_cleanup_accepts_a_single_object_for_batch_and_optional_token() -> None:
    one = {"MobileAppId": APP, "ApiToken": "t", "UserId": USER}
    assert reg.parse_cleanup_batch(one)[0].device_token is None
    assert reg.parse_cleanup({**one, "DeviceToken": " abc "}).device_token == "abc"


def test_status_query_needs_guids() -> None:
    q = reg.parse_status_query({"RegistrationRequestIds": [APP, USER], "MobileAppId": APP,
                                "ApiToken": "t"})
    assert q.request_ids == [APP, USER]
    with pytest.raises(InvalidInput, match=r"RegistrationRequestIds\[1\]"):
        reg.parse_status_query({"RegistrationRequestIds": [APP, "x"], "MobileAppId": APP,
                                "ApiToken": "t"})


@pytest.mark.parametrize(
    ("kind", "token", "reason"),
    [
        (reg.TokenKind.APNS, "a" * 64, None),
        (reg.TokenKind.APNS, "a" * 65, reg.FailureReason.DEVICE_TOKEN_TOO_LONG),
        (reg.TokenKind.APNS, "zz" * 10, reg.FailureReason.INVALID_DEVICE_TOKEN),
        (reg.TokenKind.FCM, "f" * 200, None),
        (reg.TokenKind.FCM, "f" * 5000, reg.FailureReason.DEVICE_TOKEN_TOO_LONG),
        (reg.TokenKind.FCM, "has space", reg.FailureReason.INVALID_DEVICE_TOKEN),
    ],
)
def test_token_formats(kind: reg.TokenKind, token: str, reason: reg.FailureReason | None) -> None:
    found = reg.check_token(kind, token)
    assert (found[0] if found else None) == reason


def test_callback_headers_must_be_a_json_object_of_strings() -> None:
    assert reg.parse_callback_headers('{"X-Key": "v"}') == {"X-Key": "v"}
    assert reg.parse_callback_headers(None) is None
    for bad in ("nope", "[1]", '{"a": 1}', '{"bad header": "v"}', '{"X": "a\\nb"}'):
        with pytest.raises(InvalidInput):
            reg.parse_callback_headers(bad)


@pytest.mark.parametrize("name", [
    "Host", "host", "Content-Length", "Transfer-Encoding", "CONNECTION", "Keep-Alive",
    "Proxy-Connection", "TE", "Trailer", "Upgrade", "Proxy-Authorization",
    "Proxy-Authenticate", "HTTP2-Settings",
])
def test_callback_headers_may_not_set_framing_or_hop_by_hop_headers(name: str) -> None:
    # RFC 9110 §7.6.1 (Connection and the hop-by-hop fields), §8.6 (Content-Length), RFC 9112
    # §6.1 (Transfer-Encoding), §7.2 (Host): the client that sends the callback owns these.
    with pytest.raises(InvalidInput) as caught:
        reg.parse_callback_headers(json.dumps({"Authorization": "Bearer x", name: "v"}))
    assert caught.value.field == "x-ms-callback-url-headers"
    assert repr(name) in caught.value.message


@pytest.mark.parametrize("value", ["a\x00b", "a\tb\x01", "a\x7f", "caf\u00e9", "\u20ac"])
def test_callback_header_values_are_visible_ascii(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        reg.parse_callback_headers(json.dumps({"X-Key": value}))
    assert caught.value.field in ("x-ms-callback-url-headers", "x-ms-callback-url-headers.X-Key")


def test_ordinary_callback_headers_pass() -> None:
    headers = {"Authorization": "Bearer abc.def", "X-Api-Key": "k-1", "Content-Type":
               "application/json", "X-Trace": "a b\tc"}
    assert reg.parse_callback_headers(json.dumps(headers)) == headers


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/x", "http://localhost:8080/x", "http://10.1.2.3/", "http://[::1]/",
    "http://169.254.169.254/latest", "http://192.168.0.1/", "http://foo.localhost/",
    "http://[::ffff:127.0.0.1]/",
])
def test_private_callback_urls_are_refused_by_default(url: str) -> None:
    with pytest.raises(InvalidInput, match="CLARION_WEBHOOK_ALLOW_PRIVATE"):
        check_url(url, allow_private=False)
    assert check_url(url, allow_private=True)


@pytest.mark.parametrize("url", ["ftp://example.com/", "not a url", "https://", "http://h:99999/"])
def test_malformed_callback_urls(url: str) -> None:
    with pytest.raises(InvalidInput):
        check_url(url, allow_private=True)


def test_public_callback_urls_pass() -> None:
    assert check_url("https://hooks.example.com/clarion", allow_private=False) == \
        "hooks.example.com"
    assert check_url("http://8.8.8.8/x", allow_private=False) == "8.8.8.8"


def test_user_ids_are_kept_in_canonical_guid_form() -> None:
    r = reg.parse_device({"MobileAppId": APP, "UserId": USER.upper(), "ApiToken": "t",
                          "FcmDeviceToken": "x"})
    assert r.user_id == USER
    c = reg.parse_cleanup({"MobileAppId": APP, "UserId": USER.upper(), "ApiToken": "t"})
    assert c.user_id == USER
    assert reg.parse_device({"MobileAppId": APP, "UserId": "crm-42", "ApiToken": "t",
                             "FcmDeviceToken": "x"}).user_id == "crm-42"


@pytest.mark.parametrize("token", ["ab", "a" * 31, "a" * 33])
def test_apns_tokens_too_short_or_odd_are_invalid(token: str) -> None:
    found = reg.check_token(reg.TokenKind.APNS, token)
    assert found is not None
    assert found[0] is reg.FailureReason.INVALID_DEVICE_TOKEN


@pytest.mark.parametrize("endpoint", ["https://push.example.net/a\nb", "https://push.example.net/\t",
                                      "https://push.example.net/\x7f"])
def test_web_push_endpoints_with_control_characters_are_refused(endpoint: str) -> None:
    sub = {"endpoint": endpoint, "keys": {"p256dh": _b64u(65), "auth": _b64u(16)}}
    with pytest.raises(InvalidInput) as caught:
        reg.parse_device({"MobileAppId": APP, "UserId": USER, "ApiToken": "t",
                          "WebPushSubscription": sub})
    assert caught.value.field == "WebPushSubscription.endpoint"
