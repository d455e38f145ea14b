"""Push messages: a designed, stored message whose texts are CIJ templates, and its
personalisation for one person.

``PushMessageIn`` is the document (validated once, when saved: every template is parsed and
every placeholder it uses must be declared, so nothing can fail to parse at send time).
``CompiledMessage`` is a document ready to render (its templates compiled once, shared by
every person of a send); ``personalise`` renders it for one person into the
``clarion.domain.messages.Message`` the send path delivers.

A placeholder's value comes from its source: ``audience`` (a person field — first_name,
last_name, email, phone, time_zone, locale, kind — or any key of the person's attributes),
``trigger`` (an attribute of the trigger that started the journey) or ``org`` (an org
setting). A missing or empty value takes the placeholder's ``default`` (or stays empty).
Values put into the on-click URL are percent-encoded, so the scheme and host written in the
template are the ones opened.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol
from urllib.parse import quote

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from clarion.domain.compliance.quiet_times import profile_from_document
from clarion.domain.messages import (
    _LIMITS,
    DEFAULT_TTL_SECONDS,
    MAX_TTL_SECONDS,
    Message,
    _url,
    invalid_input,
)
from clarion.domain.outcomes import Notification, Platform
from clarion.domain.people import PersonRead
from clarion.domain.templates import (
    NAME,
    CompiledTemplate,
    cached_template,
    compile_template,
)
from clarion.domain.text import check_document, controls
from clarion.errors import InvalidInput

PERSON_FIELDS = ("first_name", "last_name", "email", "phone", "time_zone", "locale", "kind")
COMPLIANCE_FIELDS = ("unsubscribe_url",)  # placeholders with source "compliance"
MAX_PLACEHOLDERS = 100  # CIJ: "up to 100 dynamic attributes per message"
TEST_TRACKING_ID = ""  # CIJ contract §4: a test send carries an empty trackingId
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,99}")
_RESERVED_DATA = {"link", "originalLink", "trackingId", "imageUrl", "title", "body"}
# The start of an on-click URL template must fix where it leads: a scheme and a host (or an
# app link's scheme) written out before any placeholder.
_URL_HEAD = re.compile(r"^(https?://[^/?#{]+([/?#]|$)"
                       r"|(?!https?:)[a-z][a-z0-9+.-]{1,31}:[^{])", re.I)


@dataclass(frozen=True, slots=True)
class PersonFacts:
    """What a template may read of a person."""

    id: str
    kind: str = "contact"
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    time_zone: str | None = None
    locale: str | None = None
    attributes: Mapping[str, object] = field(default_factory=dict)

    @staticmethod
    def of(person: PersonRead) -> PersonFacts:
        return PersonFacts(id=person.id, kind=person.kind, email=person.email,
                           phone=person.phone, first_name=person.first_name,
                           last_name=person.last_name, time_zone=person.time_zone,
                           locale=person.locale, attributes=person.attributes)

    def value(self, name: str) -> object:
        if name in PERSON_FIELDS:
            return getattr(self, name)
        return self.attributes.get(name)

    def as_mapping(self) -> dict[str, object]:
        """Fields and attributes as one flat mapping (fields win over a same-named
        attribute), e.g. the facts a segment filter evaluates."""
        return {**self.attributes, **{f: getattr(self, f) for f in PERSON_FIELDS},
                "id": self.id}


class Placeholder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Literal["audience", "trigger", "org", "compliance"] = Field(
        description="audience: a person field or attribute; trigger: an attribute of the "
        "trigger that started the journey; org: an org setting; compliance: "
        "unsubscribe_url, the person's unsubscribe link for the app.")
    field: str = Field(min_length=1, max_length=100, description="The field, attribute or "
                       "setting read, e.g. first_name, tier, support_phone.")
    default: str | None = Field(None, max_length=1000,
                                description="Used when the value is missing or empty.")


class OnClick(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["open_app", "open_url"] = "open_app"
    url: str | None = Field(None, max_length=2048, description="With open_url: an https URL "
                            "or an app link; may hold placeholders (their values are "
                            "percent-encoded). Tracked as any send's link.")


class PushMessageIn(BaseModel):
    """A push message document as written (create and replace)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    app_id: str = Field(min_length=1, max_length=64)
    category: Literal["commercial", "transactional"] = "commercial"
    title: str = Field("", max_length=_LIMITS["title"], description="A template.")
    subtitle: str = Field("", max_length=_LIMITS["subtitle"], description="A template.")
    body: str = Field("", max_length=_LIMITS["body"], description="A template.")
    image_url: str | None = Field(None, description="https URL of an image (2:1).")
    on_click: OnClick = Field(default_factory=OnClick)
    data: dict[str, str] = Field(default_factory=dict, max_length=100,
                                 description="Custom string values (templates), at most 100.")
    ttl: int = Field(DEFAULT_TTL_SECONDS, ge=0, le=MAX_TTL_SECONDS, strict=True,
                     description="Seconds the providers keep trying (at most 4 weeks).")
    priority: Literal["high", "normal"] = "high"
    collapse_key: str | None = Field(None, min_length=1, max_length=64)
    placeholders: dict[str, Placeholder] = Field(default_factory=dict,
                                                 max_length=MAX_PLACEHOLDERS)
    quiet_times: dict[str, Any] | None = Field(
        None, description="A quiet-time profile for this message, in place of the org's "
        "(docs/compliance.md); a journey's own profile comes before it.")

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> PushMessageIn:
        if not self.title and not self.body:
            raise InvalidInput("a message needs a title or a body", field="body",
                               fix="Give title and/or body.")
        for name, p in self.placeholders.items():
            if not NAME.fullmatch(name):
                raise InvalidInput(f"placeholder name {name!r} is not a name",
                                   field=f"placeholders.{name}",
                                   fix="Use letters, digits and _ (not first), e.g. FirstName.")
            if p.source == "compliance" and p.field not in COMPLIANCE_FIELDS:
                raise InvalidInput(f"placeholder {name}: a compliance placeholder reads "
                                   f"{', '.join(COMPLIANCE_FIELDS)}, not {p.field!r}",
                                   field=f"placeholders.{name}.field",
                                   fix='Write "field": "unsubscribe_url".')
            if not _FIELD.fullmatch(p.field):
                raise InvalidInput(f"placeholder {name}: field {p.field!r} is not a field name",
                                   field=f"placeholders.{name}.field",
                                   fix="Name a person field (first_name, …), an attribute, a "
                                   "trigger attribute or an org setting.")
        if self.quiet_times is not None:
            try:
                profile_from_document(self.quiet_times)
            except InvalidInput as exc:
                exc.field = f"quiet_times.{exc.field}" if exc.field else "quiet_times"
                raise
        long_keys = [k for k in self.data if not 0 < len(k) <= 100]
        if long_keys:
            raise InvalidInput("data keys must be 1 to 100 characters", field="data",
                               fix=f"Shorten {long_keys[0][:20]!r}….")
        reserved = _RESERVED_DATA & set(self.data) | {
            k for k in self.data if k.lower() in ("from", "message_type", "notification")
            or k.lower().startswith(("google", "gcm"))}  # FCM refuses these (Message.data)
        if reserved:
            raise InvalidInput(f"data may not use the reserved keys {sorted(reserved)}",
                               field="data",
                               fix="Use on_click / image_url, or rename the keys (FCM also "
                               "reserves from, message_type, notification, google*, gcm*).")
        self.image_url = _url(self.image_url, "image_url", https_only=True)
        if self.on_click.action == "open_url":
            if not self.on_click.url:
                raise InvalidInput("on_click.url is required with action open_url",
                                   field="on_click.url", fix="Give the URL to open, or use "
                                   "action open_app.")
            self._check_url(self.on_click.url)
        elif self.on_click.url:
            raise InvalidInput("on_click.url is only for action open_url", field="on_click.url",
                               fix='Set "action": "open_url", or remove the url.')
        # Every template parses and uses declared placeholders only: checked when a document
        # is written, not again on reading one back (stored, or a read model being answered).
        if type(self) is PushMessageIn and not (info.context or {}).get("stored"):
            self.compiled()
        return self

    @staticmethod
    def _check_url(url: str) -> None:
        if "{{" not in url:
            _url(url, "on_click.url", https_only=False)
            return
        if not _URL_HEAD.match(url):
            raise InvalidInput("on_click.url must start with its scheme and host before any "
                               "placeholder", field="on_click.url",
                               fix="Write e.g. https://contoso.example/offers/{{OfferId}}: "
                               "placeholders may fill the path and query only.")
        _url(re.sub(r"\{\{.*?\}\}", "x", url), "on_click.url", https_only=False)

    def compiled(self) -> CompiledMessage:
        known = set(self.placeholders)

        def parse(source: str, name: str) -> CompiledTemplate:
            return compile_template(source, field=name, known=known)

        return CompiledMessage(
            self,
            title=parse(self.title, "title"), subtitle=parse(self.subtitle, "subtitle"),
            body=parse(self.body, "body"),
            url=parse(self.on_click.url or "", "on_click.url"),
            data={k: parse(v, f"data.{k}") for k, v in self.data.items()})


@dataclass(frozen=True, slots=True)
class CompiledMessage:
    """A document with its templates compiled: render it for many people."""

    doc: PushMessageIn
    title: CompiledTemplate
    subtitle: CompiledTemplate
    body: CompiledTemplate
    url: CompiledTemplate
    data: Mapping[str, CompiledTemplate]

    @staticmethod
    def of(doc: PushMessageIn) -> CompiledMessage:
        """Compile a document already validated (stored): templates come from the cache."""
        return CompiledMessage(
            doc, title=cached_template(doc.title), subtitle=cached_template(doc.subtitle),
            body=cached_template(doc.body), url=cached_template(doc.on_click.url or ""),
            data={k: cached_template(v) for k, v in doc.data.items()})

    @property
    def needs_compliance(self) -> bool:
        """Whether a placeholder reads a compliance value (the unsubscribe link)."""
        return any(p.source == "compliance" for p in self.doc.placeholders.values())

    def values(self, person: PersonFacts, trigger: Mapping[str, object],
               org_settings: Mapping[str, str],
               compliance: Mapping[str, str] | None = None) -> dict[str, object]:
        out: dict[str, object] = {}
        for name, p in self.doc.placeholders.items():
            value: object = (person.value(p.field) if p.source == "audience" else
                             trigger.get(p.field) if p.source == "trigger" else
                             org_settings.get(p.field) if p.source == "org" else
                             (compliance or {}).get(p.field))
            if value is None or value == "":
                value = p.default
            out[name] = value
        return out

    def render(self, person: PersonFacts, trigger: Mapping[str, object],
               org_settings: Mapping[str, str],
               compliance: Mapping[str, str] | None = None) -> Message:
        """The message of one person (``TemplateOutputTooLarge`` when a field renders past
        its bound)."""
        values = self.values(person, trigger, org_settings, compliance)
        link = None
        if self.doc.on_click.action == "open_url":
            shown = {k: "" if v is None else quote(_text(v), safe="") for k, v in values.items()}
            link = self.url.render(shown, field="on_click.url")
        d = self.doc
        return Message(
            title=self.title.render(values, field="title"),
            subtitle=self.subtitle.render(values, field="subtitle"),
            body=self.body.render(values, field="body"), image_url=d.image_url, link=link,
            data={k: t.render(values, field=f"data.{k}") for k, t in self.data.items()},
            ttl_seconds=d.ttl, priority=d.priority, collapse_key=d.collapse_key)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def personalise(doc: PushMessageIn, person: PersonFacts, trigger: Mapping[str, object],
                org_settings: Mapping[str, str]) -> Message:
    """The message ``doc`` as ``person`` receives it."""
    return CompiledMessage.of(doc).render(person, trigger, org_settings)


def parse_push_message(raw: Any) -> PushMessageIn:
    """Validate a push message document (a file, a stored row) or raise InvalidInput."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("a message document must be a JSON object", field="message",
                           fix='Write {"name": ..., "app_id": ..., "title": ...}.')
    check_document(dict(raw), "message")
    try:
        return PushMessageIn.model_validate(raw)
    except ValidationError as exc:
        raise invalid_input(exc, "message") from exc


def stored(raw: Mapping[str, Any]) -> PushMessageIn:
    """A document read back from the store (validated when it was saved)."""
    return PushMessageIn.model_validate(raw, context={"stored": True})


class PushMessageRead(PushMessageIn):
    """A stored push message: the document as written, with its id."""

    id: str
    created_at: datetime
    updated_at: datetime


MAX_ORG_SETTINGS = 100


def parse_org_settings(raw: Any) -> dict[str, str]:
    """An org's settings: at most 100 string values named like fields."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("settings must be a JSON object of strings", field="settings",
                           fix='Send {"support_phone": "+1 555 0100", ...}.')
    if len(raw) > MAX_ORG_SETTINGS:
        raise InvalidInput(f"at most {MAX_ORG_SETTINGS} settings", field="settings",
                           fix="Remove settings no message uses.")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not _FIELD.fullmatch(key):
            raise InvalidInput(f"setting name {key!r} is not a name", field=f"settings.{key}",
                               fix="Use letters, digits, _, . and - (a letter or _ first).")
        if not isinstance(value, str) or len(value) > 1000:
            raise InvalidInput(f"setting {key} must be a string of at most 1000 characters",
                               field=f"settings.{key}", fix="Give the value as a string.")
        controls(value, f"settings.{key}")
        out[key] = value
    return out


# ------------------------------------------------------------------------------ preview

PREVIEW_TRACKING_ID = "00000000-0000-4000-8000-000000000000"  # as long as a real one


@dataclass(frozen=True, slots=True)
class PlatformPayload:
    """What a device of one platform would receive, and its size against the provider's
    limit."""

    platform: str
    payload: dict[str, Any]
    bytes: int  # what the provider counts
    limit: int
    fits: bool
    note: str | None = None


class PayloadPreviewer(Protocol):
    """The providers' payload builders, seen from the domain (a port: the adapters implement
    it in ``clarion.providers.preview``)."""

    def preview(self, platform: Platform, notification: Notification, *,
                notification_block: bool) -> PlatformPayload: ...
