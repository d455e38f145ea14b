"""Push messages through the native API (CRUD, settings, preview, test send) and personalised
sends with the scripted fake sender, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from clarion.bootstrap import Container
from clarion.domain import links
from clarion.providers.fake import FakeSender
from clarion.store import tables as t
from tests.factories import World, apns_token, drain, world

pytestmark = pytest.mark.integration

WELCOME: dict[str, Any] = {
    "name": "Welcome", "app_id": "<app id>", "category": "commercial",
    "title": "Welcome, {{FirstName}}",
    "body": "{{#if Tier}}Your {{Tier}} perks are ready{{else}}Glad you are here{{/if}}",
    "image_url": "https://contoso.example/img/welcome-2x1.png",
    "on_click": {"action": "open_url", "url": "https://contoso.example/welcome"},
    "data": {"campaign": "welcome"},
    "placeholders": {"FirstName": {"source": "audience", "field": "first_name",
                                   "default": "there"},
                     "Tier": {"source": "audience", "field": "tier"}}}


def admin(w: World) -> dict[str, str]:
    return {"authorization": f"Bearer {w.admin_token}"}


def welcome(w: World, **changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(WELCOME)
    doc["app_id"] = w.app_id
    doc.update(changes)
    return doc


async def register(c: Container, client: httpx.AsyncClient, w: World, person: str,
                   **token: str) -> None:
    r = await client.post(f"/api/v1.0/orgs/{w.org_id}/pushdeviceregistration/devices",
                          json={"MobileAppId": w.app_id, "UserId": person,
                                "ApiToken": w.api_token, **token})
    assert r.status_code == 202, r.text
    await drain(c)


async def create(client: httpx.AsyncClient, w: World, doc: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(f"/v1/orgs/{w.org_id}/messages", json=doc, headers=admin(w))
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def named(c: Container, w: World) -> None:
    await c.people.update(w.org_id, w.person_ids[0],
                          {"first_name": "Ann", "attributes": {"tier": "gold"}})


async def test_crud_answers_the_stored_document_with_its_id(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    doc = welcome(w)
    created = await create(client, w, doc)
    expected = copy.deepcopy(doc)
    expected["placeholders"]["Tier"]["default"] = None  # defaults are filled in
    assert {k: created[k] for k in doc} == expected
    assert created["ttl"] == 2_419_200 and created["priority"] == "high"
    url = f"/v1/orgs/{w.org_id}/messages"
    got = (await client.get(f"{url}/{created['id']}", headers=admin(w))).json()
    assert got == created
    listed = (await client.get(url, headers=admin(w))).json()
    assert [m["id"] for m in listed] == [created["id"]]
    r = await client.put(f"{url}/{created['id']}", json=welcome(w, name="Hello"),
                         headers=admin(w))
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Hello" and r.json()["created_at"] == created["created_at"]
    assert (await client.delete(f"{url}/{created['id']}", headers=admin(w))).status_code == 204
    r = await client.get(f"{url}/{created['id']}", headers=admin(w))
    assert r.status_code == 404


async def test_template_errors_are_400_naming_field_and_position_and_store_nothing(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    r = await client.post(f"/v1/orgs/{w.org_id}/messages", headers=admin(w),
                          json=welcome(w, body="Hi\n{{#if Tier}}{{Teir}}{{/if}}"))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["field"] == "body"
    assert "'Teir'" in error["message"] and "line 2, column 13" in error["message"]
    r = await client.post(f"/v1/orgs/{w.org_id}/messages", headers=admin(w),
                          json=welcome(w, title="{{ FirstName.upper() }}"))
    assert r.status_code == 400 and r.json()["error"]["field"] == "title"
    r = await client.post(f"/v1/orgs/{w.org_id}/messages", headers=admin(w),
                          json=welcome(w, app_id="00000000-0000-4000-8000-000000000000"))
    assert r.status_code in (400, 404) and r.json()["error"]["field"] == "app_id"
    async with container.db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(t.push_messages)) == 0


async def test_settings_round_trip_and_feed_org_placeholders(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    url = f"/v1/orgs/{w.org_id}/settings"
    assert (await client.get(url, headers=admin(w))).json() == {}
    r = await client.put(url, json={"support_phone": "+1 555 0100"}, headers=admin(w))
    assert r.status_code == 200 and r.json() == {"support_phone": "+1 555 0100"}
    r = await client.put(url, json={"x": 1}, headers=admin(w))
    assert r.status_code == 400 and r.json()["error"]["field"] == "settings.x"
    assert (await client.get(url, headers=admin(w))).json() == {"support_phone": "+1 555 0100"}
    m = await create(client, w, welcome(w, body="Call {{Phone}}", placeholders={
        "Phone": {"source": "org", "field": "support_phone"}, **WELCOME["placeholders"]}))
    r = await client.post(f"/v1/orgs/{w.org_id}/messages/{m['id']}/preview",
                          json={"user_id": w.person_ids[0]}, headers=admin(w))
    assert r.status_code == 200, r.text
    assert r.json()["message"]["body"] == "Call +1 555 0100"


async def test_preview_gives_each_platforms_payload_and_size(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    await named(container, w)
    m = await create(client, w, welcome(w))
    r = await client.post(f"/v1/orgs/{w.org_id}/messages/{m['id']}/preview",
                          json={"user_id": w.person_ids[0]}, headers=admin(w))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["message"]["title"] == "Welcome, Ann"
    assert got["message"]["body"] == "Your gold perks are ready"
    by = {p["platform"]: p for p in got["platforms"]}
    assert set(by) == {"ios", "android", "web"}
    assert by["ios"]["payload"]["aps"]["alert"]["title"] == "Welcome, Ann"
    assert by["ios"]["payload"]["data"]["originalLink"] == "https://contoso.example/welcome"
    assert by["android"]["payload"]["data"]["body"] == "Your gold perks are ready"
    assert by["web"]["payload"]["title"] == "Welcome, Ann"
    assert (by["ios"]["limit"], by["android"]["limit"], by["web"]["limit"]) == (4096,) * 3
    assert all(p["fits"] and 0 < p["bytes"] < 4096 for p in by.values())
    assert by["web"]["bytes"] > len(str(by["web"]["payload"])) // 2  # encrypted size
    r = await client.post(f"/v1/orgs/{w.org_id}/messages/{m['id']}/preview",
                          json={"user_id": "00000000-0000-4000-8000-00000000dead"},
                          headers=admin(w))
    assert r.status_code == 404 and r.json()["error"]["field"] == "user_id"
    huge = await create(client, w, welcome(w, data={f"k{i}": "x" * 40 for i in range(100)}))
    r = await client.post(f"/v1/orgs/{w.org_id}/messages/{huge['id']}/preview",
                          json={"user_id": w.person_ids[0]}, headers=admin(w))
    assert not any(p["fits"] for p in r.json()["platforms"])


async def test_personalised_send_gives_each_person_their_text_on_every_device(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    w = await world(container, dry_run_on_register=False)
    await named(container, w)
    ann_phone, ann_tablet = apns_token(), apns_token()
    for tok in (ann_phone, ann_tablet):
        await register(container, client, w, w.person_ids[0], ApnsDeviceToken=tok)
    await register(container, client, w, w.person_ids[1], FcmDeviceToken="fcm-bob")
    m = await create(client, w, welcome(w))
    r = await client.post(f"/v1/orgs/{w.org_id}/sends", headers=admin(w),
                          json={"message_id": m["id"], "user_ids": w.person_ids})
    assert r.status_code == 202, r.text
    send_id = r.json()["id"]
    assert r.json()["app_id"] == w.app_id
    await drain(container)
    got = (await client.get(f"/v1/orgs/{w.org_id}/sends/{send_id}", headers=admin(w))).json()
    assert got["counts"] == {"accepted": 3}
    sent = {s.device.token: s.notification for s in fake_sender.sent if not s.dry_run}
    assert {sent[t].title for t in (ann_phone, ann_tablet)} == {"Welcome, Ann"}
    assert sent[ann_phone].body == "Your gold perks are ready"
    assert (sent["fcm-bob"].title, sent["fcm-bob"].body) == ("Welcome, there",
                                                             "Glad you are here")
    assert all(n.tracking_id == send_id for n in sent.values())
    assert all(n.original_link == "https://contoso.example/welcome" for n in sent.values())
    delivery_ids = {d["id"] for d in got["deliveries"]}
    assert {links.verify(container.link_key, n.link.rsplit("/", 1)[1])
            for n in sent.values() if n.link} == delivery_ids  # tracked per delivery
    async with container.db.read() as conn:
        rows = await conn.scalar(select(func.count()).select_from(t.send_messages))
    assert rows == 2  # one rendering per person, not per device


async def test_trigger_data_fills_trigger_placeholders(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    w = await world(container, dry_run_on_register=False)
    await register(container, client, w, w.person_ids[0], FcmDeviceToken="fcm-1")
    m = await create(client, w, welcome(w, body="{{City}}: cart {{Total}}", placeholders={
        "City": {"source": "trigger", "field": "city", "default": "near you"},
        "Total": {"source": "trigger", "field": "cart_total"}, **WELCOME["placeholders"]}))
    r = await client.post(f"/v1/orgs/{w.org_id}/sends", headers=admin(w), json={
        "message_id": m["id"], "user_id": w.person_ids[0], "app_id": w.app_id,
        "trigger_data": {"cart_total": 52.5}})
    assert r.status_code == 202, r.text
    await drain(container)
    [n] = [s.notification for s in fake_sender.sent if not s.dry_run]
    assert n.body == "near you: cart 52.5"


@pytest.mark.parametrize(("body", "field"), [
    ({"message_id": "00000000-0000-4000-8000-000000000000"}, "message_id"),
    ({"message": {"title": "x"}, "message_id": "m"}, "message"),
    ({"message": {"title": "x"}}, "app_id"),
    ({"message": {"title": "x"}, "trigger_data": {}, "app_id": "a"}, "trigger_data"),
])
async def test_bad_sends_by_message_are_refused(
    container: Container, client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    w = await world(container)
    r = await client.post(f"/v1/orgs/{w.org_id}/sends", headers=admin(w),
                          json={"user_id": w.person_ids[0], **body})
    assert r.status_code in (400, 404), r.text
    assert r.json()["error"]["field"] == field


async def test_test_send_has_an_empty_tracking_id_and_an_untracked_link(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    w = await world(container, dry_run_on_register=False)
    await named(container, w)
    await register(container, client, w, w.person_ids[0], FcmDeviceToken="fcm-1")
    await register(container, client, w, w.person_ids[1], FcmDeviceToken="fcm-2")
    m = await create(client, w, welcome(w))
    r = await client.post(f"/v1/orgs/{w.org_id}/messages/{m['id']}/test",
                          json={"user_id": w.person_ids[0]}, headers=admin(w))
    assert r.status_code == 202, r.text
    await drain(container)
    [sent] = [s for s in fake_sender.sent if not s.dry_run]
    assert sent.device.token == "fcm-1"
    n = sent.notification
    assert (n.title, n.tracking_id, n.link) == ("Welcome, Ann", "",
                                                "https://contoso.example/welcome")


async def test_fanout_reads_each_pages_people_at_once_and_skips_who_cannot_be_rendered(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from clarion.services import fanout
    from clarion.store import messages as message_store

    monkeypatch.setattr(fanout, "DELIVERIES_PER_PAGE", 4)
    reads: list[int] = []
    real = message_store.people_facts

    async def counted(conn: Any, org_id: str, ids: Any) -> Any:
        reads.append(len(ids))
        return await real(conn, org_id, ids)

    monkeypatch.setattr(message_store, "people_facts", counted)
    w = await world(container, people_count=10, dry_run_on_register=False)
    for i, person in enumerate(w.person_ids):
        await register(container, client, w, person, FcmDeviceToken=f"fcm-{i}")
    huge = w.person_ids[3]
    await container.people.update(w.org_id, huge, {"attributes": {"tier": "x" * 2000}})
    m = await create(client, w, welcome(w, body="{{#if Tier}}" + "{{Tier}}" * 5
                                        + "{{else}}Glad you are here{{/if}}"))
    r = await client.post(f"/v1/orgs/{w.org_id}/sends", headers=admin(w),
                          json={"message_id": m["id"], "user_ids": w.person_ids})
    assert r.status_code == 202, r.text
    await drain(container)
    assert reads == [4, 4, 2]  # one read per fan-out page, never one per person
    sent = [s for s in fake_sender.sent if not s.dry_run]
    assert len(sent) == 9
    assert all(s.notification.body == "Glad you are here" for s in sent)
    async with container.db.read() as conn:
        failed = await conn.scalar(select(func.sum(t.report_counters.c.value)).where(
            t.report_counters.c.send_id == r.json()["id"],
            t.report_counters.c.metric == "not_sent:personalisation_failed"))
    assert failed == 1
