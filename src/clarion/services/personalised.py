"""Personalised sends: the send document that names a stored push message, and its rendering
per person (by fan-out, for a page of people at a time).

A personalised send stores, in its ``message`` column, the push message's document as it was
when the send was made, the trigger data and the org settings its placeholders read: every page
of the send renders from the same snapshot, whatever is edited meanwhile. Inline sends have no
such document and are never rendered per person.

A stored message without placeholders reads nothing of anyone: its send document also carries
the message rendered once (``static``), and fan-out and delivery treat the send as an inline
one (no per-person read, rendering or ``send_messages`` row), while it keeps its message id,
category and reports as a personalised send.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from clarion.domain.messages import Message
from clarion.domain.push_messages import CompiledMessage, PersonFacts, stored
from clarion.domain.sends import SendCreate
from clarion.domain.templates import TemplateOutputTooLarge
from clarion.domain.text import check_document
from clarion.errors import InvalidInput, NotFound
from clarion.services.orgs import require_org
from clarion.store import messages as message_store
from clarion.store import org_settings as settings_store
from clarion.store.db import Conn

PERSONALISED = "personalised"
STATIC = "static"


def is_personalised(document: Mapping[str, Any]) -> bool:
    """Whether each person of the send gets their own rendering (a stored message with
    placeholders)."""
    return bool(document.get(PERSONALISED)) and document.get(STATIC) is None


def static_message(document: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The one message everyone of a send of a stored message without placeholders gets."""
    found = document.get(STATIC)
    return found if isinstance(found, Mapping) else None


def is_test(document: Mapping[str, Any]) -> bool:
    return bool(document.get("test"))


def message_not_found(org_id: str, message_id: str, *, field: str | None = None) -> NotFound:
    return NotFound(f"push message {message_id} does not exist in organization {org_id}",
                    field=field, fix=f"List the messages with `clarion messages list --org "
                    f"{org_id}` (GET /v1/orgs/{org_id}/messages).")


async def personalised_document(conn: Conn, org_id: str, command: SendCreate, *,
                                test: bool = False) -> tuple[str, dict[str, Any], int]:
    """(app id, the send's document, its TTL) for a send of a stored message."""
    assert command.message_id is not None
    row = await message_store.get(conn, org_id, command.message_id)
    if row is None:
        await require_org(conn, org_id)  # a mistyped org is named as such
        raise message_not_found(org_id, command.message_id, field="message_id")
    if command.app_id is not None and command.app_id != row.app_id:
        raise InvalidInput(f"message {row.id} belongs to app {row.app_id}, not "
                           f"{command.app_id}", field="app_id",
                           fix="Leave app_id out (the message's app is used) or give that one.")
    doc = stored(row.document)
    trigger = dict(command.trigger_data or {})
    check_document(trigger, "trigger_data")
    wanted = {p.field for p in doc.placeholders.values() if p.source == "org"}
    settings = await settings_store.get(conn, org_id) if wanted else {}
    document = {PERSONALISED: True, "message_id": row.id, "template": row.document,
                "trigger_data": trigger,
                "org_settings": {k: v for k, v in settings.items() if k in wanted}}
    if not doc.placeholders:  # (too large: rendered per person, counted as not rendered)
        with suppress(TemplateOutputTooLarge):
            document[STATIC] = CompiledMessage.of(doc).render(
                PersonFacts(id=""), {}, {}).as_dict()
    if test:
        document["test"] = True
    return row.app_id, document, doc.ttl


@dataclass(frozen=True, slots=True)
class Renderer:
    """A personalised send's message, ready to render for each of its people."""

    compiled: CompiledMessage
    trigger: Mapping[str, object]
    org_settings: Mapping[str, str]

    @staticmethod
    def of(document: Mapping[str, Any]) -> Renderer:
        return Renderer(CompiledMessage.of(stored(document["template"])),
                        dict(document.get("trigger_data") or {}),
                        dict(document.get("org_settings") or {}))

    def render(self, person: PersonFacts,
               compliance: Mapping[str, str] | None = None) -> Message | None:
        """The person's message; None when it cannot be made (a value too long: the person is
        counted as not sent rather than the page failing for everyone)."""
        try:
            return self.compiled.render(person, self.trigger, self.org_settings, compliance)
        except TemplateOutputTooLarge:
            return None
