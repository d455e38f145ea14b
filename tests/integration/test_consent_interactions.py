"""Consent through the CIJ interaction API (Clarion's ``OptedIn``/``OptedOut`` statuses), on
SQLite and PostgreSQL: recorded as the person's consent for the app, never as an interaction;
honoured by the next send; an older report never overwrites a newer choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from clarion.bootstrap import Container
from clarion.providers.fake import FakeSender
from clarion.store import compliance as consent_store
from clarion.store import tables as t
from tests.factories import drain, recorded, world
from tests.integration.test_interactions import (
    Sent,
    events_path,
    interactions,
    legacy_path,
    report,
    rolled,
    sent_world,
)
from tests.integration.test_sending import admin, get, send

pytestmark = pytest.mark.integration


def item(s: Sent, token: str, status: Any, **extra: Any) -> dict[str, Any]:
    return {"TrackingId": s.send_id, "DeviceToken": token, "PushNotificationStatus": status,
            **extra}


async def consent_of(client: httpx.AsyncClient, s: Sent, person: str) -> dict[str, Any]:
    r = await client.get(f"/v1/orgs/{s.w.org_id}/apps/{s.w.app_id}/people/{person}/consent",
                         headers=admin(s.w))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def ago(**delta: float) -> datetime:
    return (datetime.now(UTC) - timedelta(**delta)).replace(microsecond=0)


async def opt_outs_marked(c: Container, org_id: str) -> bool:
    async with c.db.read() as conn:
        row = await consent_store.settings(conn, org_id)
    return row is not None and row.opt_outs


async def test_an_opt_out_in_a_batch_is_consent_not_an_interaction_and_blocks_the_next_send(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)
    me, other = s.w.person_ids
    r = await client.post(events_path(s.w.org_id),
                          json=[item(s, s.fcm, "OptedOut"), item(s, s.fcm, "Opened")])
    assert r.status_code == 202, r.text
    rows = await interactions(container)
    assert [(row.kind, row.delivery_id) for row in rows] == [("opened", s.deliveries[s.fcm])]
    assert await rolled(container, s.send_id) == {
        "opened": 1, "unique_opened_devices": 1, "unique_opened_people": 1,
        "unique_engaged_people": 1}
    got = await consent_of(client, s, me)
    assert (got["opted_in"], got["source"]) == (False, "interaction api")
    assert (await consent_of(client, s, other))["opted_in"] is None
    assert await opt_outs_marked(container, s.w.org_id)

    fake_sender.sent.clear()
    commercial = await send(client, s.w, user_ids=s.w.person_ids)
    transactional = await send(client, s.w, user_ids=s.w.person_ids, category="transactional")
    await drain(container)
    assert (await get(client, s.w, commercial.json()["id"]))["blocked"] == {"no_consent": 1}
    assert (await get(client, s.w, transactional.json()["id"]))["blocked"] == {}
    to_me = [x for x in fake_sender.sent if not x.dry_run and x.device.token == s.fcm]
    assert [x.notification.tracking_id for x in to_me] == [transactional.json()["id"]]


async def test_opting_in_again_re_allows_when_the_org_requires_consent(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)
    me = s.w.person_ids[0]
    r = await client.put(f"/v1/orgs/{s.w.org_id}/compliance", json={"require_consent": True},
                         headers=admin(s.w))
    assert r.status_code == 200 and r.json()["require_consent"] is True
    # The legacy endpoint takes the choices too; names are case-insensitive.
    r = await client.post(legacy_path(s.w.org_id, s.send_id),
                          json={"DeviceToken": s.ios, "PushNotificationStatus": "optedout"})
    assert r.status_code == 202, r.text
    await recorded(container)
    assert (await consent_of(client, s, me))["opted_in"] is False
    blocked = await send(client, s.w, user_id=me)
    await drain(container)
    assert (await get(client, s.w, blocked.json()["id"]))["blocked"] == {"no_consent": 1}

    assert (await report(client, s, s.web, "OptedIn")).status_code == 202
    await recorded(container)
    got = await consent_of(client, s, me)
    assert (got["opted_in"], got["source"]) == (True, "interaction api")
    fake_sender.sent.clear()
    allowed = await send(client, s.w, user_id=me)
    await drain(container)
    read = await get(client, s.w, allowed.json()["id"])
    assert (read["blocked"], read["counts"]) == ({}, {"accepted": 3})
    assert sorted(x.device.token for x in fake_sender.sent if not x.dry_run) == sorted(
        [s.ios, s.fcm, s.web])
    assert await interactions(container) == []


async def test_an_older_report_does_not_overwrite_a_newer_choice(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)
    me = s.w.person_ids[0]
    path = events_path(s.w.org_id)
    # In one batch, the latest Timestamp wins whatever the order of the items.
    hour_ago = ago(hours=1)
    r = await client.post(path, json=[
        item(s, s.fcm, "OptedOut", Timestamp=hour_ago.isoformat()),
        item(s, s.ios, "opted_in", Timestamp=(hour_ago - timedelta(hours=1)).isoformat())])
    assert r.status_code == 202, r.text
    await recorded(container)
    got = await consent_of(client, s, me)
    assert got["opted_in"] is False
    assert datetime.fromisoformat(got["at"]) == hour_ago
    # Across batches: a stored choice is kept over an older report…
    older = ago(minutes=90)
    assert (await report(client, s, s.fcm, "OptedIn", Timestamp=older.isoformat())
            ).status_code == 202
    await recorded(container)
    assert (await consent_of(client, s, me))["opted_in"] is False
    # … and over one older than a choice made elsewhere (REST).
    r = await client.put(f"/v1/orgs/{s.w.org_id}/apps/{s.w.app_id}/people/{me}/consent",
                         json={"opted_in": True, "source": "app settings"}, headers=admin(s.w))
    assert r.status_code == 200, r.text
    assert (await report(client, s, s.fcm, "OptedOut", Timestamp=ago(minutes=5).isoformat())
            ).status_code == 202
    await recorded(container)
    got = await consent_of(client, s, me)
    assert (got["opted_in"], got["source"]) == (True, "app settings")
    # A newer report replaces it.
    assert (await report(client, s, s.fcm, "OptedOut")).status_code == 202
    await recorded(container)
    got = await consent_of(client, s, me)
    assert (got["opted_in"], got["source"]) == (False, "interaction api")


async def test_consent_reports_with_an_unknown_pair_or_status_are_refused(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)
    me, other = s.w.person_ids
    path = events_path(s.w.org_id)
    alone = await report(client, s, s.other, "OptedOut")  # registered, not a recipient
    assert alone.status_code == 400
    assert alone.json()["error"]["code"] == "UnknownTrackingId"
    batch = await client.post(path, json=[item(s, s.fcm, "OptedOut"),
                                          item(s, s.other, "OptedOut")])
    assert batch.status_code == 400
    assert batch.json()["error"]["message"].startswith("item 1: ")
    assert batch.json()["error"]["code"] == "UnknownTrackingId"
    elsewhere = await world(container)  # another org's path: the same refusal
    r = await client.post(events_path(elsewhere.org_id), json=item(s, s.fcm, "OptedOut"))
    assert r.json()["error"]["code"] == "UnknownTrackingId"
    bad = await report(client, s, s.fcm, "Unsubscribed")
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["field"] == "PushNotificationStatus"
    assert '"OptedIn"' in error["fix"] and '"OptedOut"' in error["fix"]
    assert await interactions(container) == []
    assert (await consent_of(client, s, me))["opted_in"] is None
    assert (await consent_of(client, s, other))["opted_in"] is None
    assert not await opt_outs_marked(container, s.w.org_id)


async def test_upsert_consents_overwrites_by_default_and_keeps_newer_with_newer_only(
    container: Container,
) -> None:
    w = await world(container, people_count=1)
    person = w.person_ids[0]
    now = datetime.now(UTC)

    def row(opted_in: bool, at: datetime) -> consent_store.ConsentRow:
        return consent_store.ConsentRow(w.app_id, person, opted_in, "test", at)

    async def stored() -> tuple[bool, datetime]:
        async with container.db.read() as conn:
            got = await consent_store.consent(conn, w.app_id, person)
        assert got is not None
        return got.opted_in, got.at

    async with container.db.write() as conn:
        await consent_store.upsert_consents(conn, w.org_id, [row(True, now)])
    async with container.db.write() as conn:  # the import's behaviour: the last write wins
        await consent_store.upsert_consents(conn, w.org_id, [row(False, now - timedelta(1))])
    assert await stored() == (False, now - timedelta(1))
    async with container.db.write() as conn:
        await consent_store.upsert_consents(conn, w.org_id, [row(True, now)], newer_only=True)
        await consent_store.upsert_consents(
            conn, w.org_id, [row(False, now - timedelta(hours=1))], newer_only=True)
    assert await stored() == (True, now)
    async with container.db.write() as conn:  # an equal time replaces (the later report)
        await consent_store.upsert_consents(conn, w.org_id, [row(False, now)], newer_only=True)
    assert await stored() == (False, now)
    async with container.db.read() as conn:
        count = len((await conn.execute(select(t.consents))).all())
    assert count == 1
