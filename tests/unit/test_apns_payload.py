"""APNs payload and headers: CIJ's contract, dry run, and the limits checked before sending."""

from __future__ import annotations

import orjson
import pytest
from jh2.hpack import NeverIndexedHeaderTuple

from clarion.domain.outcomes import Notification
from clarion.providers.apns.payload import (
    MAX_PAYLOAD_BYTES,
    PayloadProblem,
    RequestTemplate,
    build_payload,
    payload_dict,
    request_parts,
    request_template,
)

pytestmark = pytest.mark.unit

DELIVERY = "3f2b8c1e-7d4a-4e21-9b0c-5a6d7e8f9012"
TOKEN = "ab" * 32


def _parts(notification: Notification, *, dry_run: bool = False, delivery: str = DELIVERY,
           token: str = TOKEN) -> dict[bytes, bytes]:
    parts = request_parts(delivery_id=delivery, token=token, notification=notification,
                          dry_run=dry_run, topic="com.contoso.app", authority=b"h:1",
                          now=lambda: 1_700_000_000.5)
    names = [n for n, _ in parts.headers]
    assert len(names) == len(set(names)), "no header twice"
    return dict(parts.headers)


def test_alert_payload_follows_the_cij_contract() -> None:
    n = Notification(title="Sale", subtitle="Today", body="50% off", image_url="https://i/x.png",
                     link="https://t/l", original_link="https://shop/x", tracking_id="t-1",
                     data={"custom": "1", "trackingId": "overridden"})
    assert payload_dict(n) == {
        "aps": {"alert": {"title": "Sale", "subtitle": "Today", "body": "50% off"},
                "mutable-content": 1},
        "data": {"custom": "1", "trackingId": "t-1", "link": "https://t/l",
                 "originalLink": "https://shop/x", "imageUrl": "https://i/x.png"},
    }


def test_without_image_no_mutable_content_and_empty_keys_left_out() -> None:
    body = orjson.loads(build_payload(Notification(body="hi"), dry_run=False))
    assert body == {"aps": {"alert": {"body": "hi"}}, "data": {"trackingId": ""}}


def test_dry_run_is_an_invisible_background_push() -> None:
    n = Notification(title="x", body="y", ttl_seconds=600, collapse_key="c", priority="high")
    headers = _parts(n, dry_run=True)
    assert orjson.loads(build_payload(n, dry_run=True)) == {"aps": {"content-available": 1}}
    assert headers[b"apns-push-type"] == b"background"
    assert headers[b"apns-priority"] == b"5"
    assert headers[b"apns-expiration"] == b"0"
    assert b"apns-collapse-id" not in headers


def test_headers_of_a_visible_push() -> None:
    headers = _parts(Notification(body="b", ttl_seconds=3600, collapse_key="promo"))
    assert headers[b":method"] == b"POST"
    assert headers[b":path"] == b"/3/device/" + TOKEN.encode()
    assert headers[b"apns-topic"] == b"com.contoso.app"
    assert headers[b"apns-push-type"] == b"alert"
    assert headers[b"apns-priority"] == b"10"
    assert headers[b"apns-expiration"] == b"1700003600"
    assert headers[b"apns-collapse-id"] == b"promo"
    assert headers[b"apns-id"] == DELIVERY.encode()


@pytest.mark.parametrize(("ttl", "expected"), [(None, None), (0, b"0"), (60, b"1700000060")])
def test_expiration_from_ttl(ttl: int | None, expected: bytes | None) -> None:
    assert _parts(Notification(body="b", ttl_seconds=ttl)).get(b"apns-expiration") == expected


def test_normal_priority_is_5() -> None:
    assert _parts(Notification(body="b", priority="normal"))[b"apns-priority"] == b"5"


def test_uppercase_guid_is_a_valid_apns_id_and_a_non_uuid_is_left_out() -> None:
    assert _parts(Notification(body="b"), delivery=DELIVERY.upper())[b"apns-id"] == \
        DELIVERY.upper().encode()
    assert b"apns-id" not in _parts(Notification(body="b"), delivery="delivery-1")


def test_payload_at_the_limit_passes_and_one_byte_more_says_by_how_much() -> None:
    empty = len(build_payload(Notification(body=""), dry_run=False))
    fits = Notification(body="x" * (MAX_PAYLOAD_BYTES - empty))
    assert len(build_payload(fits, dry_run=False)) == MAX_PAYLOAD_BYTES
    with pytest.raises(PayloadProblem) as info:
        build_payload(Notification(body="x" * (MAX_PAYLOAD_BYTES - empty + 10)), dry_run=False)
    assert info.value.reason == "PayloadTooLarge"
    assert info.value.detail == ("the payload is 4106 bytes, 10 over APNs' 4096-byte limit: "
                                 "shorten the title/body or data")


def test_size_counts_utf8_bytes_not_characters() -> None:
    with pytest.raises(PayloadProblem, match="over APNs' 4096-byte limit"):
        build_payload(Notification(body="é" * 2100), dry_run=False)  # 2100 chars, 4200 bytes


def test_dry_run_is_never_too_large() -> None:
    assert build_payload(Notification(body="x" * 10_000), dry_run=True)


def test_collapse_id_limit_is_64_bytes() -> None:
    assert _parts(Notification(body="b", collapse_key="é" * 32))[b"apns-collapse-id"]
    with pytest.raises(PayloadProblem) as info:
        _parts(Notification(body="b", collapse_key="é" * 32 + "x"))
    assert info.value.reason == "BadCollapseId"
    assert "65 bytes" in info.value.detail


@pytest.mark.parametrize("token", ["not-hex-at-all", "ab cd", "", "zz" * 32,
                                   "dGhpcyBpcyBiYXNlNjQ="])
def test_tokens_that_cannot_be_apns_tokens_are_refused(token: str) -> None:
    with pytest.raises(PayloadProblem) as info:
        _parts(Notification(body="b"), token=token)
    assert info.value.reason == "BadDeviceToken"


def test_uppercase_hex_token_is_fine() -> None:
    assert _parts(Notification(body="b"), token="AB" * 32)[b":path"].endswith(b"AB" * 32)


# --- one template per notification, per device only :path and apns-id ----------------------


def _template(notification: Notification, *, dry_run: bool = False) -> RequestTemplate:
    return request_template(notification, dry_run=dry_run, topic="com.contoso.app",
                            authority=b"h:1", now=lambda: 1_700_000_000.5)


def test_a_template_gives_each_device_the_same_request_as_request_parts() -> None:
    note = Notification(title="T", body="B", ttl_seconds=60, collapse_key="c", priority="normal")
    template = _template(note)
    for delivery, token in ((DELIVERY, TOKEN), ("not-a-uuid", "cd" * 32)):
        one = template.parts(delivery, token)
        alone = request_parts(delivery_id=delivery, token=token, notification=note,
                              dry_run=False, topic="com.contoso.app", authority=b"h:1",
                              now=lambda: 1_700_000_000.5)
        assert one == alone
        assert one.body is template.body  # the payload is built once per notification
    first, second = template.parts(DELIVERY, TOKEN), template.parts(DELIVERY, "cd" * 32)
    assert dict(first.headers)[b":path"] != dict(second.headers)[b":path"]
    assert [h for h in first.headers if h[0] not in (b":path", b"apns-id")] == \
        [h for h in second.headers if h[0] not in (b":path", b"apns-id")]


def test_per_request_values_stay_out_of_the_hpack_table() -> None:
    """:path and apns-id differ on every request: indexed, they would only push the headers
    that repeat (authorization, apns-topic) out of the HPACK dynamic table."""
    parts = _template(Notification(body="hi")).parts(DELIVERY, TOKEN)
    never = {h[0] for h in parts.headers if isinstance(h, NeverIndexedHeaderTuple)}
    assert never == {b":path", b"apns-id"}
    assert [n for n, _ in parts.headers][:4] == [b":method", b":scheme", b":authority", b":path"]


def test_a_template_fits_only_the_same_notification_and_mode() -> None:
    note = Notification(title="T", body="B", data={"k": "v"})
    template = _template(note)
    assert template.fits(note, False)
    assert template.fits(Notification(title="T", body="B", data={"k": "v"}), False)  # equal
    assert not template.fits(note, True)  # a dry run is another request
    assert not template.fits(Notification(title="T", body="B", data={"k": "w"}), False)


def test_a_bad_token_is_reported_before_a_bad_payload() -> None:
    with pytest.raises(PayloadProblem) as info:
        request_parts(delivery_id=DELIVERY, token="zz", notification=Notification(
            body="x" * 5000), dry_run=False, topic="t", authority=b"h:1")
    assert info.value.reason == "BadDeviceToken"
    with pytest.raises(PayloadProblem) as info:
        _template(Notification(body="x")).parts(DELIVERY, "zz")
    assert info.value.reason == "BadDeviceToken"
