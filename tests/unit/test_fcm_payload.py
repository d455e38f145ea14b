"""FCM message building: CIJ data keys as strings, notification block, Android options, limits."""

from __future__ import annotations

import orjson
import pytest

from clarion.domain.outcomes import Notification
from clarion.providers.fcm.payload import (
    MAX_PAYLOAD_BYTES,
    MAX_TTL_SECONDS,
    PayloadError,
    as_fcm_string,
    build_message,
    payload_size,
)

pytestmark = pytest.mark.unit


def _body(notification: Notification, *, block: bool = False, dry_run: bool = False,
          token: str = "tok-1") -> dict[str, object]:
    built = build_message(token, notification, notification_block=block, dry_run=dry_run)
    body = orjson.loads(built.body)
    assert isinstance(body, dict)
    return body


def test_data_message_carries_the_cij_keys_as_strings() -> None:
    n = Notification(title="Sale", body="50% off", image_url="https://img/x.png",
                     link="https://t.example/r/1", original_link="https://shop/sale",
                     tracking_id="8b0c", data={"order": "42"})
    body = _body(n)
    message = body["message"]
    assert body["validate_only"] is False
    assert message["token"] == "tok-1"
    assert message["data"] == {"order": "42", "title": "Sale", "body": "50% off",
                               "imageUrl": "https://img/x.png", "link": "https://t.example/r/1",
                               "originalLink": "https://shop/sale", "trackingId": "8b0c"}
    assert "notification" not in message
    assert message["android"] == {"priority": "HIGH"}


def test_missing_optional_keys_are_left_out_but_tracking_id_stays() -> None:
    data = _body(Notification(title="t", body="b"))["message"]["data"]
    assert data == {"title": "t", "body": "b", "trackingId": ""}


def test_custom_values_become_strings_none_is_dropped_and_cij_keys_win() -> None:
    custom = {"n": 3, "f": 1.5, "yes": True, "no": False, "obj": {"b": 1, "a": [1]},
              "gone": None, "title": "custom title"}
    data = _body(Notification(title="real", data=custom))["message"]["data"]  # type: ignore[arg-type]
    assert data["n"] == "3"
    assert data["f"] == "1.5"
    assert data["yes"] == "true"
    assert data["no"] == "false"
    assert data["obj"] == '{"a":[1],"b":1}'
    assert "gone" not in data
    assert data["title"] == "real"
    assert all(isinstance(v, str) for v in data.values())


@pytest.mark.parametrize("key", ["from", "message_type", "notification", "google.x", "gcm.n",
                                 "GCM_thing", ""])
def test_reserved_custom_keys_are_refused_before_sending(key: str) -> None:
    with pytest.raises(PayloadError) as info:
        build_message("t", Notification(data={key: "v"}), notification_block=False,
                      dry_run=False)
    assert info.value.reason == "InvalidDataKey"
    assert repr(key) in info.value.detail


def test_notification_block_only_when_the_app_asks_for_it() -> None:
    n = Notification(title="T", body="B", image_url="https://img/1.png")
    assert "notification" not in _body(n, block=False)["message"]
    assert _body(n, block=True)["message"]["notification"] == {
        "title": "T", "body": "B", "image": "https://img/1.png"}
    assert _body(Notification(title="T"), block=True)["message"]["notification"] == {
        "title": "T", "body": ""}


def test_android_priority_ttl_and_collapse_key() -> None:
    normal = _body(Notification(priority="normal", ttl_seconds=3600, collapse_key="promo"))
    assert normal["message"]["android"] == {"priority": "NORMAL", "ttl": "3600s",
                                            "collapse_key": "promo"}
    zero = _body(Notification(ttl_seconds=0))["message"]["android"]
    assert zero["ttl"] == "0s"
    negative = _body(Notification(ttl_seconds=-5))["message"]["android"]
    assert negative["ttl"] == "0s"


def test_ttl_over_four_weeks_is_clamped_and_said() -> None:
    built = build_message("t", Notification(ttl_seconds=MAX_TTL_SECONDS + 1),
                          notification_block=False, dry_run=False)
    assert orjson.loads(built.body)["message"]["android"]["ttl"] == "2419200s"
    assert built.note is not None
    assert "4-week" in built.note
    assert "2419201" in built.note
    exact = build_message("t", Notification(ttl_seconds=MAX_TTL_SECONDS),
                          notification_block=False, dry_run=False)
    assert exact.note is None


def test_dry_run_is_validate_only_with_a_minimal_data_message() -> None:
    body = _body(Notification(title="ignored", ttl_seconds=5), block=True, dry_run=True)
    assert body == {"message": {"token": "tok-1", "data": {"dryRun": "true"}},
                    "validate_only": True}


def _sized(total: int) -> Notification:
    """A notification whose payload is exactly ``total`` bytes."""
    base = payload_size({"data": {"title": "", "body": "", "trackingId": ""}})
    return Notification(body="x" * (total - base))


def test_payload_at_the_limit_is_sent() -> None:
    built = build_message("t", _sized(MAX_PAYLOAD_BYTES), notification_block=False,
                          dry_run=False)
    assert built.payload_bytes == MAX_PAYLOAD_BYTES


def test_payload_over_the_limit_says_by_how_much() -> None:
    with pytest.raises(PayloadError) as info:
        build_message("t", _sized(MAX_PAYLOAD_BYTES + 7), notification_block=False,
                      dry_run=False)
    assert info.value.reason == "MessageTooBig"
    assert "4103 bytes" in info.value.detail
    assert "7 over" in info.value.detail


def test_size_counts_utf8_bytes_and_the_notification_block() -> None:
    n = Notification(body="é" * 1000)  # 2 bytes each in UTF-8
    data_only = build_message("t", n, notification_block=False, dry_run=False)
    assert data_only.payload_bytes > 2000
    with pytest.raises(PayloadError):  # the body twice (data + notification) is over 4096
        build_message("t", Notification(body="é" * 1100), notification_block=True,
                      dry_run=False)


def test_token_is_not_counted_in_the_payload() -> None:
    n = _sized(MAX_PAYLOAD_BYTES)
    build_message("t" * 500, n, notification_block=False, dry_run=False)


@pytest.mark.parametrize(("value", "expected"), [
    ("s", "s"), (None, None), (True, "true"), (0, "0"), (2.5, "2.5"), ([1, "a"], '[1,"a"]'),
])
def test_as_fcm_string(value: object, expected: str | None) -> None:
    assert as_fcm_string(value) == expected
