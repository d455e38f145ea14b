"""A push message: as an API caller writes it (``MessageIn``, validated once, before anything
is queued) and as it is stored and sent (``Message``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

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


class MessageIn(BaseModel):
    """A message as an API caller writes it: the one validator of message documents (the API
    validates request bodies with it, ``parse_message`` everything else). Rules with a fix to
    name raise ``InvalidInput`` (pydantic lets other exceptions through untouched)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field("", max_length=_LIMITS["title"])
    subtitle: str = Field("", max_length=_LIMITS["subtitle"])
    body: str = Field("", max_length=_LIMITS["body"])
    image_url: str | None = Field(None, description="https URL of an image (2:1).")
    link: str | None = Field(None, description="Opened on tap: https URL or app link.")
    data: dict[str, Annotated[str, Field()]] = Field(
        default_factory=dict, max_length=100,
        description="Custom string values (FCM requires strings), at most 100.")
    ttl: int = Field(DEFAULT_TTL_SECONDS, ge=0, le=MAX_TTL_SECONDS, strict=True,
                     validation_alias=AliasChoices("ttl", "ttl_seconds"),
                     description="Seconds the providers keep trying (at most 4 weeks).")
    priority: Literal["high", "normal"] = "high"
    collapse_key: str | None = Field(None, min_length=1, max_length=64,
                                     description="APNs allows at most 64 bytes.")

    @field_validator("title", "subtitle", "body", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value

    @model_validator(mode="after")
    def _rules(self) -> MessageIn:
        if not self.title and not self.body:
            raise InvalidInput("a message needs a title or a body", field="message.body",
                               fix="Give message.title and/or message.body.")
        long_keys = [k for k in self.data if len(k) > 100]
        if long_keys:
            raise InvalidInput("message.data keys must be at most 100 characters",
                               field="message.data", fix=f"Shorten {long_keys[0][:20]!r}….")
        reserved = {"link", "originalLink", "trackingId", "imageUrl", "title", "body"} & set(
            self.data)
        if reserved:
            raise InvalidInput(f"message.data may not use the reserved keys {sorted(reserved)}",
                               field="message.data",
                               fix="Use message.link / message.image_url, or rename the keys.")
        self.image_url = _url(self.image_url, "message.image_url", https_only=True)
        self.link = _url(self.link, "message.link", https_only=False)
        return self

    def message(self) -> Message:
        return Message(title=self.title, subtitle=self.subtitle, body=self.body,
                       image_url=self.image_url, link=self.link, data=dict(self.data),
                       ttl_seconds=self.ttl, priority=self.priority,
                       collapse_key=self.collapse_key)


def invalid_input(exc: ValidationError, prefix: str) -> InvalidInput:
    """A pydantic validation error as the error tree's ``InvalidInput``, naming the field."""
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    field = f"{prefix}.{loc}" if loc else prefix
    return InvalidInput(f"{field}: {first['msg']}", field=field,
                        fix="Correct the value; the API reference (/docs) gives every rule.")


def parse_message(raw: Any) -> Message:
    """Validate a message document (the ``message`` of a send) or raise InvalidInput."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("message must be an object", field="message",
                           fix='Send {"title": ..., "body": ...}.')
    check_document(dict(raw), "message")  # what the CLI reads from a file too
    try:
        return MessageIn.model_validate(raw).message()
    except ValidationError as exc:
        raise invalid_input(exc, "message") from exc
