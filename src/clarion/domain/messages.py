"""A push message as an API caller writes it, validated once, before anything is queued."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from clarion.domain.outcomes import Notification
from clarion.domain.text import check_document, controls
from clarion.errors import InvalidInput

MAX_TTL_SECONDS = 28 * 24 * 3600  # FCM's and Web Push services' ceiling: 4 weeks
DEFAULT_TTL_SECONDS = MAX_TTL_SECONDS
_LIMITS = {"title": 256, "subtitle": 256, "body": 4000}


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str
    subtitle: str = ""
    image_url: str | None = None
    link: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)
    ttl_seconds: int = DEFAULT_TTL_SECONDS
    priority: str = "high"
    collapse_key: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "subtitle": self.subtitle, "body": self.body,
                "image_url": self.image_url, "link": self.link, "data": dict(self.data),
                "ttl_seconds": self.ttl_seconds, "priority": self.priority,
                "collapse_key": self.collapse_key}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Message:
        return cls(**{k: raw[k] for k in cls.__slots__ if k in raw})

    def notification(self, *, tracking_id: str, link: str | None = None) -> Notification:
        """What the providers put on the wire. ``link`` is the (tracked) link the device opens;
        ``original_link`` is the raw one, for apps without tracking consent (CIJ contract §4)."""
        return Notification(
            title=self.title, subtitle=self.subtitle, body=self.body, image_url=self.image_url,
            link=link if link is not None else self.link, original_link=self.link,
            tracking_id=tracking_id, data=self.data, ttl_seconds=self.ttl_seconds,
            priority=self.priority, collapse_key=self.collapse_key)


_APP_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]{1,31}$")
# Schemes that run code or read local data where a link is opened: never a notification link.
_UNSAFE_SCHEMES = {"javascript", "data", "vbscript", "file", "about", "blob", "filesystem"}


def _url(value: Any, name: str, *, https_only: bool) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 2048:
        raise InvalidInput(f"{name} must be a URL of at most 2048 characters", field=name,
                           fix="Give an absolute https URL.")
    # No raw control character anywhere (RFC 3986 §2: a URI has none). urlsplit drops tabs and
    # line breaks without a word (WHATWG URL), so such a link passed here and was refused by the
    # tracked-link redirect afterwards: a dead link in a notification already sent.
    controls(value, name)
    parts = urlsplit(value.strip())
    scheme = parts.scheme.lower()
    if scheme == "https" or (scheme == "http" and not https_only):
        if parts.netloc:
            return value.strip()
    elif (not https_only and _APP_SCHEME.match(scheme) and scheme not in _UNSAFE_SCHEMES
          and (parts.netloc or parts.path)):
        return value.strip()  # an app link such as contoso://orders/42
    allowed = "https" if https_only else "https (or http), or an app link such as contoso://x"
    raise InvalidInput(f"{name} {value!r} is not an absolute {allowed} URL", field=name,
                       fix="Give an absolute URL such as https://contoso.com/offer"
                       + ("" if https_only else "; javascript:, data: and file: links are "
                          "refused"))


def parse_message(raw: Any) -> Message:
    """Validate a message document (the ``message`` of a send) or raise InvalidInput."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("message must be an object", field="message",
                           fix='Send {"title": ..., "body": ...}.')
    check_document(dict(raw), "message")  # what the CLI reads from a file too
    texts: dict[str, str] = {}
    for name, limit in _LIMITS.items():
        value = raw.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str) or len(value) > limit:
            raise InvalidInput(f"message.{name} must be a string of at most {limit} characters",
                               field=f"message.{name}", fix=f"Shorten message.{name}.")
        texts[name] = value
    if not texts["title"] and not texts["body"]:
        raise InvalidInput("a message needs a title or a body", field="message.body",
                           fix="Give message.title and/or message.body.")
    data = raw.get("data") or {}
    if not isinstance(data, Mapping) or len(data) > 100 or not all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= 100 for k, v in data.items()
    ):
        raise InvalidInput("message.data must be an object of at most 100 string values",
                           field="message.data",
                           fix="FCM requires strings: convert numbers and booleans to text.")
    reserved = {"link", "originalLink", "trackingId", "imageUrl", "title", "body"} & set(data)
    if reserved:
        raise InvalidInput(f"message.data may not use the reserved keys {sorted(reserved)}",
                           field="message.data",
                           fix="Use message.link / message.image_url, or rename the keys.")
    ttl = raw.get("ttl", raw.get("ttl_seconds", DEFAULT_TTL_SECONDS))
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= MAX_TTL_SECONDS:
        raise InvalidInput(f"message.ttl must be whole seconds from 0 to {MAX_TTL_SECONDS}",
                           field="message.ttl", fix="4 weeks is the providers' maximum.")
    priority = raw.get("priority", "high")
    if priority not in ("high", "normal"):
        raise InvalidInput("message.priority must be 'high' or 'normal'",
                           field="message.priority", fix="Use 'normal' for non-urgent news.")
    collapse = raw.get("collapse_key")
    if collapse is not None and (not isinstance(collapse, str) or not 0 < len(collapse) <= 64):
        raise InvalidInput("message.collapse_key must be 1 to 64 characters",
                           field="message.collapse_key", fix="APNs allows at most 64 bytes.")
    return Message(
        title=texts["title"], subtitle=texts["subtitle"], body=texts["body"],
        image_url=_url(raw.get("image_url"), "message.image_url", https_only=True),
        link=_url(raw.get("link"), "message.link", https_only=False),
        data=dict(data), ttl_seconds=ttl, priority=priority, collapse_key=collapse)
