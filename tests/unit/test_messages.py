from __future__ import annotations

import pytest

from clarion.domain.messages import parse_message
from clarion.errors import InvalidInput

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("link", ["https://contoso.com/offer", "http://contoso.com/x",
                                  "contoso://orders/42", "contoso:orders"])
def test_links_a_notification_may_open(link: str) -> None:
    assert parse_message({"title": "t", "link": link}).link == link


@pytest.mark.parametrize("link", ["javascript:alert(1)", "JavaScript:alert(1)",
                                  "data:text/html,<script>x</script>", "file:///etc/passwd",
                                  "vbscript:x", "https://", "not a url", "//contoso.com/x"])
def test_unsafe_or_malformed_links_are_refused(link: str) -> None:
    with pytest.raises(InvalidInput, match=r"message\.link"):
        parse_message({"title": "t", "link": link})


def test_images_must_be_https() -> None:
    with pytest.raises(InvalidInput, match="image_url"):
        parse_message({"title": "t", "image_url": "http://contoso.com/a.png"})
    assert parse_message({"title": "t", "image_url": "https://c.com/a.png"}).image_url


@pytest.mark.parametrize(("doc", "field"), [
    ({}, "message.body"), ({"title": "t", "ttl": 2419201}, "message.ttl"),
    ({"title": "t", "ttl": True}, "message.ttl"), ({"title": "t", "priority": "urgent"},
                                                   "message.priority"),
    ({"title": "t", "collapse_key": "x" * 65}, "message.collapse_key"),
    ({"title": "t", "data": {"trackingId": "x"}}, "message.data"),
])
def test_message_rules(doc: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_message(doc)
    assert err.value.field == field


@pytest.mark.parametrize("name", ["link", "image_url"])
@pytest.mark.parametrize("junk", ["\r\nSet-Cookie: a=b", "\n", "\x00", "\t", "\x1b", "\x7f",
                                  "\x85", "\u009f"])
def test_urls_with_control_characters_are_refused(name: str, junk: str) -> None:
    """A control character (C0, DEL, C1) anywhere: Python's urlsplit drops tabs and line breaks
    silently, so such a link passed, and was refused later by the tracked-link redirect."""
    for url in (f"https://contoso.com/offer{junk}x", f"https://contoso.com/{junk}",
                f"{junk}https://contoso.com/"):
        with pytest.raises(InvalidInput) as caught:
            parse_message({"title": "t", name: url})
        assert caught.value.field == f"message.{name}", url
