"""The Web Push plaintext, its size limit and the RFC 8030 delivery headers."""

from __future__ import annotations

import json
import re

import pytest

from clarion.domain.outcomes import Notification
from clarion.providers.webpush.payload import (
    DEFAULT_TTL_SECONDS,
    MAX_PLAINTEXT_BYTES,
    build_payload,
    bytes_over_limit,
    encrypted_size,
    topic_header,
    ttl_header,
    urgency_header,
)

pytestmark = pytest.mark.unit


def test_full_payload_carries_every_cij_field() -> None:
    note = Notification(title="Hi", subtitle="Sub", body="Body", image_url="https://i/x.png",
                        link="https://t/l", original_link="https://o/l", tracking_id="trk",
                        data={"k": "v"})
    assert json.loads(build_payload(note)) == {
        "title": "Hi", "body": "Body", "subtitle": "Sub", "imageUrl": "https://i/x.png",
        "link": "https://t/l", "originalLink": "https://o/l", "trackingId": "trk",
        "data": {"k": "v"}}


def test_empty_optional_fields_are_left_out_but_tracking_id_stays() -> None:
    payload = json.loads(build_payload(Notification(title="T", body="B")))
    assert payload == {"title": "T", "body": "B", "trackingId": ""}


def test_unicode_is_sent_as_utf8() -> None:
    raw = build_payload(Notification(title="Café ☕", body="日本"))
    assert "Café ☕".encode() in raw
    assert json.loads(raw)["body"] == "日本"


def test_dry_run_payload_and_ttl() -> None:
    note = Notification(title="T", body="B", ttl_seconds=60)
    assert json.loads(build_payload(note, dry_run=True)) == {"dryRun": True}
    assert ttl_header(note, dry_run=True) == "0"


@pytest.mark.parametrize(("ttl", "header"), [
    (None, str(DEFAULT_TTL_SECONDS)), (0, "0"), (3600, "3600"), (-5, "0")])
def test_ttl_header(ttl: int | None, header: str) -> None:
    assert ttl_header(Notification(ttl_seconds=ttl)) == header


@pytest.mark.parametrize(("priority", "urgency"), [
    ("high", "high"), ("normal", "normal"), ("weird", "normal")])
def test_urgency_header(priority: str, urgency: str) -> None:
    assert urgency_header(Notification(priority=priority)) == urgency


def test_valid_collapse_key_is_the_topic() -> None:
    assert topic_header("promo_2026-spring") == "promo_2026-spring"
    assert topic_header("a" * 32) == "a" * 32
    assert topic_header(None) is None
    assert topic_header("") is None


@pytest.mark.parametrize("key", ["a" * 33, "spring sale!", "été", "x/y"])
def test_other_collapse_keys_map_to_a_stable_valid_topic(key: str) -> None:
    topic = topic_header(key)
    assert topic is not None
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", topic)
    assert topic_header(key) == topic
    assert topic_header(key + "2") != topic


def test_size_limit_says_by_how_much() -> None:
    assert encrypted_size(MAX_PLAINTEXT_BYTES) == 4096
    assert bytes_over_limit(b"x" * MAX_PLAINTEXT_BYTES) == 0
    assert bytes_over_limit(b"x" * (MAX_PLAINTEXT_BYTES + 1)) == 1
    assert bytes_over_limit(b"x" * 5000) == 5000 - MAX_PLAINTEXT_BYTES
