"""Push messages: designed once (templates with placeholders), stored per org, previewed per
platform, test-sent to one person, and sent personalised (``Sends.create`` with a
``message_id``).

Every template is parsed when the message is saved: an unknown placeholder or a syntax error is
an ``InvalidInput`` naming the field and position, never a failure at send time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from clarion.clock import Clock
from clarion.domain import links
from clarion.domain.messages import Message
from clarion.domain.outcomes import Platform
from clarion.domain.people import canonical_guid
from clarion.domain.push_messages import (
    PREVIEW_TRACKING_ID,
    CompiledMessage,
    PayloadPreviewer,
    PlatformPayload,
    PushMessageIn,
    PushMessageRead,
    parse_org_settings,
    stored,
)
from clarion.domain.sends import SendCreate
from clarion.domain.text import check_document
from clarion.errors import InvalidInput
from clarion.services.apps import require_app
from clarion.services.orgs import require_org
from clarion.services.people import missing_person
from clarion.services.personalised import message_not_found
from clarion.services.sending import SendAccepted, Sends
from clarion.store import apps as app_store
from clarion.store import messages as store
from clarion.store import org_settings as settings_store
from clarion.store.db import Conn, Database


@dataclass(frozen=True, slots=True)
class Preview:
    message_id: str
    user_id: str
    message: Message  # as rendered for the person
    platforms: list[PlatformPayload]


def _read(row: store.MessageRow) -> PushMessageRead:
    return PushMessageRead.model_validate(
        {**row.document, "id": row.id, "created_at": row.created_at,
         "updated_at": row.updated_at}, context={"stored": True})


class Messages:
    def __init__(self, db: Database, clock: Clock, sends: Sends, previewer: PayloadPreviewer,
                 *, public_url: str, link_key: bytes,
                 unsubscribe_url: Callable[[str, str], str] = lambda _a, _p: "") -> None:
        self._unsubscribe_url = unsubscribe_url  # (app id, person id) → the person's link
        self._db = db
        self._clock = clock
        self._sends = sends
        self._previewer = previewer
        self._public_url = public_url
        self._link_key = link_key

    async def create(self, org_id: str, doc: PushMessageIn) -> PushMessageRead:
        now = self._clock.now()
        message_id = str(uuid.uuid4())
        document = doc.model_dump(mode="json")
        async with self._db.write() as conn:
            await require_org(conn, org_id)
            await require_app(conn, org_id, doc.app_id, field="app_id")
            await store.insert_message(conn, {
                "id": message_id, "org_id": org_id, "app_id": doc.app_id, "name": doc.name,
                "document": document, "created_at": now, "updated_at": now})
        return PushMessageRead.model_validate(
            {**document, "id": message_id, "created_at": now, "updated_at": now},
            context={"stored": True})

    async def get(self, org_id: str, message_id: str) -> PushMessageRead:
        """The stored message; NotFound if it is not a message of ``org_id``."""
        async with self._db.read() as conn:
            row = await self._row(conn, org_id, message_id)
        return _read(row)

    async def _row(self, conn: Conn, org_id: str, message_id: str) -> store.MessageRow:
        row = await store.get(conn, org_id, message_id)
        if row is None:
            await require_org(conn, org_id)
            raise message_not_found(org_id, message_id)
        return row

    async def of_org(self, org_id: str, *, after: str | None = None,
                     limit: int = 1000) -> list[PushMessageRead]:
        async with self._db.read() as conn:
            rows = await store.of_org(conn, org_id, after=after, limit=limit)
            if not rows:
                await require_org(conn, org_id)
        return [_read(r) for r in rows]

    async def replace(self, org_id: str, message_id: str, doc: PushMessageIn
                      ) -> PushMessageRead:
        """Replace the document (sends already made keep the one they were made with)."""
        now = self._clock.now()
        document = doc.model_dump(mode="json")
        async with self._db.write() as conn:
            row = await self._row(conn, org_id, message_id)
            await require_app(conn, org_id, doc.app_id, field="app_id")
            await store.replace(conn, org_id, message_id, app_id=doc.app_id, name=doc.name,
                                document=document, now=now)
        return PushMessageRead.model_validate(
            {**document, "id": message_id, "created_at": row.created_at, "updated_at": now},
            context={"stored": True})

    async def delete(self, org_id: str, message_id: str) -> None:
        async with self._db.write() as conn:
            if not await store.delete_message(conn, org_id, message_id):
                await require_org(conn, org_id)
                raise message_not_found(org_id, message_id)

    # -------------------------------------------------------------------- org settings

    async def settings(self, org_id: str) -> dict[str, str]:
        async with self._db.read() as conn:
            await require_org(conn, org_id)
            return await settings_store.get(conn, org_id)

    async def put_settings(self, org_id: str, raw: Mapping[str, Any]) -> dict[str, str]:
        """Replace the org's settings (read by placeholders with source ``org``)."""
        settings = parse_org_settings(raw)
        async with self._db.write() as conn:
            await require_org(conn, org_id)
            await settings_store.put(conn, org_id, settings, self._clock.now())
        return settings

    # --------------------------------------------------------------- preview and test

    async def preview(self, org_id: str, message_id: str, user_id: str,
                      trigger_data: Mapping[str, Any] | None = None) -> Preview:
        """What each platform's device of the person would receive, with its size against
        the provider's limit (the link as the tracked link a send gives)."""
        trigger = dict(trigger_data or {})
        check_document(trigger, "trigger_data")
        bad = [k for k, v in trigger.items()
               if v is not None and not isinstance(v, str | int | float | bool)]
        if bad:
            raise InvalidInput(f"trigger_data.{bad[0]} must be a string, number, boolean or "
                               "null", field=f"trigger_data.{bad[0]}",
                               fix="Flatten the value to a scalar.")
        guid = canonical_guid(user_id)
        async with self._db.read() as conn:
            row = await self._row(conn, org_id, message_id)
            facts = (await store.people_facts(conn, org_id, [guid])).get(guid) if guid else None
            if facts is None:
                raise await missing_person(conn, org_id, user_id, field="user_id")
            settings = await settings_store.get(conn, org_id)
            app = await app_store.get(conn, row.app_id, org_id)
        doc = stored(row.document)
        message = CompiledMessage.of(doc).render(
            facts, trigger, settings,
            {"unsubscribe_url": self._unsubscribe_url(row.app_id, facts.id)})
        link = (links.tracked_url(self._public_url, self._link_key, PREVIEW_TRACKING_ID)
                if message.link else None)
        notification = message.notification(tracking_id=PREVIEW_TRACKING_ID, link=link)
        android = (app.platforms.get(Platform.ANDROID) if app is not None else None) or {}
        block = bool(android.get("notification_block", False))
        return Preview(message_id, facts.id, message, [
            self._previewer.preview(p, notification, notification_block=block)
            for p in Platform])

    async def test(self, org_id: str, message_id: str, user_id: str,
                   trigger_data: Mapping[str, Any] | None = None) -> SendAccepted:
        """A real send of the message to the person's valid devices, with an empty trackingId
        and an untracked link (CIJ's test send)."""
        command = SendCreate.model_validate({"user_id": user_id, "message_id": message_id,
                                             "trigger_data": trigger_data})
        return await self._sends.create(org_id, command, test=True)

