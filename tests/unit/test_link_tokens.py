from __future__ import annotations

import uuid

import pytest

from clarion.domain import links

pytestmark = pytest.mark.unit
KEY = b"k" * 32


def test_a_signed_link_names_its_delivery() -> None:
    delivery = str(uuid.uuid4())
    token = links.sign(KEY, delivery)
    assert len(token) == links.TOKEN_LENGTH
    assert links.verify(KEY, token) == delivery
    assert links.tracked_url("https://c.example/", KEY, delivery) == f"https://c.example/l/{token}"


def test_forged_or_malformed_tokens_are_refused() -> None:
    token = links.sign(KEY, str(uuid.uuid4()))
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert links.verify(KEY, flipped) is None
    assert links.verify(b"x" * 32, token) is None
    for bad in ("", "short", token + "x", "!" * links.TOKEN_LENGTH):
        assert links.verify(KEY, bad) is None
    other = links.sign(KEY, str(uuid.uuid4()))
    assert links.verify(KEY, token[:22] + other[22:]) is None  # id of one, MAC of another
