"""Sends through the native API with the scripted fake sender, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from clarion.bootstrap import Container
from clarion.domain import links
from clarion.domain.outcomes import Platform
from clarion.providers.fake import FakeSender
from clarion.store import tables as t
from clarion.store.jobs import NewJob
from tests.factories import World, apns_token, drain, world

pytestmark = pytest.mark.integration


def admin(w: World) -> dict[str, str]:
    return {"authorization": f"Bearer {w.admin_token}"}


async def register(c: Container, client: httpx.AsyncClient, w: World, person: str,
                   **token: str) -> None:
    r = await client.post(f"/api/v1.0/orgs/{w.org_id}/pushdeviceregistration/devices",
                          json={"MobileAppId": w.app_id, "UserId": person,
                                "ApiToken": w.api_token, **token})
    assert r.status_code == 202, r.text
    await drain(c)


async def send(client: httpx.AsyncClient, w: World, headers: dict[str, str] | None = None,
               **doc: Any) -> httpx.Response:
    body = {"app_id": w.app_id, "message": {"title": "Hi", "body": "There",
                                             "link": "https://contoso.com/x"}, **doc}
    return await client.post(f"/v1/orgs/{w.org_id}/sends", json=body,
                             headers={**admin(w), **(headers or {})})


async def get(client: httpx.AsyncClient, w: World, send_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/orgs/{w.org_id}/sends/{send_id}", headers=admin(w))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_a_send_reaches_every_valid_device_of_the_person(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    w = await world(container, dry_run_on_register=False)
    phone, tablet = apns_token(), apns_token()
    for tok in (phone, tablet):
        await register(container, client, w, w.person_ids[0], ApnsDeviceToken=tok)
    await register(container, client, w, w.person_ids[0], FcmDeviceToken="fcm-android-1")
    await register(container, client, w, w.person_ids[1], FcmDeviceToken="fcm-someone-else")
    r = await send(client, w, user_id=w.person_ids[0])
    assert r.status_code == 202
    send_id = r.json()["id"]
    assert r.json()["state"] == "queued"
    await drain(container)
    got = await get(client, w, send_id)
    assert got["state"] == "done"
    assert got["succeeded"] is True
    assert got["counts"] == {"accepted": 3}
    sent = [s for s in fake_sender.sent if not s.dry_run]
    assert sorted(s.device.token for s in sent) == sorted([phone, tablet, "fcm-android-1"])
    n = sent[0].notification
    assert (n.title, n.body, n.tracking_id, n.original_link) == (
        "Hi", "There", send_id, "https://contoso.com/x")
    delivery_ids = {d["id"] for d in (await get(client, w, send_id))["deliveries"]}
    assert all(s.notification.link is not None for s in sent)
    linked = {links.verify(container.link_key, s.notification.link.rsplit("/", 1)[1])
              for s in sent if s.notification.link}
    assert linked == delivery_ids  # one signed tracked link per delivery
    assert {d["provider_id"] for d in got["deliveries"]} == {d["id"] for d in got["deliveries"]}


async def test_outcomes_prune_dead_tokens_keep_mismatches_and_record_rejections(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container, dry_run_on_register=False)
    for tok in ("fcm-ok", "fcm-dead-1", "fcm-mismatch-1", "fcm-reject-1"):
        await register(container, client, w, w.person_ids[0], FcmDeviceToken=tok)
    send_id = (await send(client, w, user_id=w.person_ids[0])).json()["id"]
    await drain(container)
    got = await get(client, w, send_id)
    assert got["counts"] == {"accepted": 1, "invalid_token": 1, "mismatch": 1, "rejected": 1}
    assert got["succeeded"] is True
    async with container.db.read() as conn:
        rolled = dict((await conn.execute(
            select(t.report_counters.c.metric, func.sum(t.report_counters.c.value))
            .where(t.report_counters.c.send_id == send_id)
            .group_by(t.report_counters.c.metric))).all())
    assert rolled == {"inflow": 1, "deliveries": 4, "sent": 1, "sent_people": 1,
                      "not_sent:invalid_token": 1, "not_sent:mismatch": 1,
                      "not_sent:rejected": 1}
    devices = (await client.get(f"/v1/orgs/{w.org_id}/people/{w.person_ids[0]}/devices",
                                headers=admin(w))).json()["items"]
    states = {d["token"]: (d["state"], d["state_reason"]) for d in devices}
    assert states["fcm-dead-1"][0] == "invalid"
    assert states["fcm-mismatch-1"][0] == "mismatch"
    assert "BadDeviceToken" in states["fcm-mismatch-1"][1]
    assert states["fcm-ok"] == ("active", None)
    # Never sent to again: a second send only reaches the still-valid devices.
    second = (await send(client, w, user_id=w.person_ids[0])).json()["id"]
    await drain(container)
    assert (await get(client, w, second))["counts"] == {"accepted": 1, "rejected": 1}


async def test_retry_later_is_rescheduled_then_gives_up_at_the_attempt_cap(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container, dry_run_on_register=False)
    await register(container, client, w, w.person_ids[0], FcmDeviceToken="fcm-retry-1")
    send_id = (await send(client, w, user_id=w.person_ids[0])).json()["id"]
    await drain(container)
    got = await get(client, w, send_id)
    assert got["counts"] == {"pending": 1}
    assert got["deliveries"][0]["attempts"] == 1
    queued = await container.queue.list_jobs(state="queued", kind="delivery.send")
    assert len(queued) == 1
    assert queued[0].run_at_ms > container.clock.epoch_ms()
    # Make the retries due at once and run them until the cap (8 attempts by default).
    for _ in range(10):
        async with container.db.write() as conn:
            await conn.execute(t.jobs.update().values(run_at=0))
        await drain(container)
    got = await get(client, w, send_id)
    assert got["counts"] == {"expired": 1}
    assert got["deliveries"][0]["attempts"] == container.policy.max_attempts
    assert got["succeeded"] is False
    assert got["state"] == "done"


async def test_a_send_that_waits_for_retries_says_why_and_the_cause_is_logged_once(
    container: Container, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Deliveries waiting for a retry are summed per platform and reason in the send (what
    `clarion send --wait` prints), and the server logs the cause once, not per device."""
    caplog.set_level(logging.INFO, logger="clarion.services.delivery")
    w = await world(container, dry_run_on_register=False)
    for i in range(3):
        await register(container, client, w, w.person_ids[0], FcmDeviceToken=f"fcm-retry-{i}")
    await register(container, client, w, w.person_ids[0], FcmDeviceToken="fcm-fine")
    first = (await send(client, w, user_id=w.person_ids[0])).json()["id"]
    await drain(container)
    got = await get(client, w, first)
    assert got["counts"] == {"accepted": 1, "pending": 3}
    assert got["waiting"] == [{"platform": "android", "reason": "ServiceUnavailable",
                               "deliveries": 3,
                               "detail": "fake provider: token contains 'retry'"}]
    # A second send and the retries of the first: the same cause, not logged again.
    second = (await send(client, w, user_id=w.person_ids[0])).json()["id"]
    async with container.db.write() as conn:
        await conn.execute(t.jobs.update().values(run_at=0))
    await drain(container)
    assert (await get(client, w, second))["waiting"][0]["deliveries"] == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"3 android deliveries of app {w.app_id} wait for a retry: "
                        "ServiceUnavailable: fake provider: token contains 'retry' (logged "
                        "once per cause; again if it lasts 10 min)"]
    # Nothing waits on a send that is done.
    done = (await send(client, w, user_id=w.person_ids[1])).json()["id"]
    await drain(container)
    assert (await get(client, w, done))["waiting"] == []


async def test_a_credential_error_pauses_the_app_instead_of_burning_its_devices(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    w = await world(container, dry_run_on_register=False)
    for tok in ("fcm-badcreds-1", "fcm-fine-2"):
        await register(container, client, w, w.person_ids[0], FcmDeviceToken=tok)
    send_id = (await send(client, w, user_id=w.person_ids[0])).json()["id"]
    await drain(container)
    status = await container.apps.credentials_invalid(w.app_id, Platform.ANDROID)
    assert status is not None
    got = await get(client, w, send_id)
    assert got["counts"].get("pending") == 1  # the refused one waits, it is not burnt
    sent_before = len(fake_sender.sent)
    # While paused, due retries send nothing.
    async with container.db.write() as conn:
        await conn.execute(t.jobs.update().values(run_at=0))
    await drain(container)
    assert len(fake_sender.sent) == sent_before
    assert (await get(client, w, send_id))["counts"].get("pending") == 1


async def test_idempotency_key_returns_the_same_send_and_sends_nothing_twice(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    w = await world(container, dry_run_on_register=False)
    await register(container, client, w, w.person_ids[0], FcmDeviceToken="fcm-1")
    key = {"Idempotency-Key": "order-42-shipped"}
    first = await send(client, w, headers=key, user_id=w.person_ids[0])
    await drain(container)
    again = await send(client, w, headers=key, user_id=w.person_ids[0])
    await drain(container)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"]
    assert len([s for s in fake_sender.sent if not s.dry_run]) == 1
    other = await send(client, w, headers={"Idempotency-Key": "another"},
                       user_id=w.person_ids[0])
    assert other.json()["id"] != first.json()["id"]


async def test_a_person_without_devices_is_not_sent(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    send_id = (await send(client, w, user_id=w.person_ids[0])).json()["id"]
    await drain(container)
    got = await get(client, w, send_id)
    assert (got["state"], got["succeeded"], got["counts"]) == ("done", False, {})


async def test_fan_out_pages_through_many_people_without_duplicates(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    w = await world(container, people_count=1200, dry_run_on_register=False)
    r = await client.post(
        f"/api/v1.0/orgs/{w.org_id}/pushdeviceregistration/devices/batch",
        json=[{"MobileAppId": w.app_id, "UserId": p, "ApiToken": w.api_token,
               "FcmDeviceToken": f"fcm-{i}"} for i, p in enumerate(w.person_ids[:100])])
    assert r.status_code == 202
    for start in range(100, 1200, 100):
        await client.post(
            f"/api/v1.0/orgs/{w.org_id}/pushdeviceregistration/devices/batch",
            json=[{"MobileAppId": w.app_id, "UserId": p, "ApiToken": w.api_token,
                   "FcmDeviceToken": f"fcm-{start + i}"}
                  for i, p in enumerate(w.person_ids[start:start + 100])])
    await drain(container)
    send_id = (await send(client, w, user_ids=w.person_ids)).json()["id"]
    await drain(container)
    # Run every fan-out page again (as if a crashed worker's jobs were taken over).
    await container.queue.enqueue_now([
        NewJob(kind="send.fanout", payload={"send_id": send_id, "offset": off})
        for off in (0, 500, 1000, 1200)])
    await drain(container)
    async with container.db.read() as conn:
        rows = (await conn.execute(select(t.deliveries.c.device_id).where(
            t.deliveries.c.send_id == send_id))).all()
    assert len(rows) == len({r.device_id for r in rows}) == 1200
    got = await get(client, w, send_id)
    assert got["counts"] == {"accepted": 1200}
    async with container.db.read() as conn:  # every person entered the send's figures once
        inflow = (await conn.execute(select(func.sum(t.report_counters.c.value)).where(
            t.report_counters.c.send_id == send_id,
            t.report_counters.c.metric == "inflow"))).scalar()
    assert inflow == 1200
    assert len([s for s in fake_sender.sent if not s.dry_run]) == 1200


@pytest.mark.parametrize(("doc", "field"), [
    ({"message": {"title": "x", "ttl": -1}}, "message.ttl"),
    ({"message": {"title": "x", "data": {"n": 1}}}, "message"),
    ({"message": {"title": "x", "image_url": "http://insecure/x.png"}}, "message.image_url"),
    ({"message": {}}, "message.body"),
    ({"user_ids": ["00000000-0000-4000-8000-000000000000"]}, "user_id"),
    ({"segment_id": "00000000-0000-4000-8000-000000000000"}, "user_id"),  # two audiences
])
async def test_bad_sends_are_refused_and_queue_nothing(
    container: Container, client: httpx.AsyncClient, doc: dict[str, Any], field: str
) -> None:
    w = await world(container, people_count=1)
    before = await container.queue.counts()  # (creating people publishes person.created)
    body = {"app_id": w.app_id, "user_id": w.person_ids[0],
            "message": {"title": "Hi"}, **doc}
    r = await client.post(f"/v1/orgs/{w.org_id}/sends", json=body, headers=admin(w))
    assert r.status_code in (400, 422), r.text
    assert await container.queue.counts() == before


async def test_a_send_to_a_segment_that_does_not_exist_is_a_400_naming_it(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container, people_count=1)
    before = await container.queue.counts()
    for segment_id in ("00000000-0000-4000-8000-000000000000", "not-an-id"):
        r = await client.post(f"/v1/orgs/{w.org_id}/sends", headers=admin(w), json={
            "app_id": w.app_id, "segment_id": segment_id, "message": {"title": "Hi"}})
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["field"] == "segment_id" and segment_id in error["message"], error
    assert await container.queue.counts() == before


async def test_a_send_to_a_segment_reaches_its_members_through_the_api(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    w = await world(container, people_count=3, dry_run_on_register=False)
    member = w.person_ids[0]
    await container.people.update(w.org_id, member, {"attributes": {"tier": "gold"}})
    for n, person in enumerate(w.person_ids):
        await register(container, client, w, person, FcmDeviceToken=f"fcm-{n}")
    r = await client.post(f"/v1/orgs/{w.org_id}/segments", headers=admin(w),
                          json={"name": "Gold", "filter": "tier eq 'gold'"})
    assert r.status_code == 201, r.text
    r = await client.post(f"/v1/orgs/{w.org_id}/sends", headers=admin(w), json={
        "app_id": w.app_id, "segment_id": r.json()["id"], "message": {"title": "Hi"}})
    assert r.status_code == 202, r.text
    assert r.json()["user_ids"] == [] and r.json()["people"] == 0
    await drain(container)
    r = await client.get(f"/v1/orgs/{w.org_id}/sends/{r.json()['id']}", headers=admin(w))
    doc = r.json()
    assert (doc["state"], doc["people"], doc["counts"]) == ("done", 1, {"accepted": 1}), doc
    assert [d["person_id"] for d in doc["deliveries"]] == [member]
    assert [s.device.token for s in fake_sender.sent if not s.dry_run] == ["fcm-0"]


async def test_a_link_with_control_characters_is_a_400_at_send_time(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    for link in ("https://contoso.com/offer\r\nSet-Cookie: a=b", "https://contoso.com/\x00",
                 "contoso://orders/4\t2"):
        r = await client.post(f"/v1/orgs/{w.org_id}/sends", json={
            "app_id": w.app_id, "user_id": w.person_ids[0],
            "message": {"title": "Hi", "link": link}},
            headers={"authorization": f"Bearer {w.admin_token}"})
        assert r.status_code == 400, (link, r.text)
        assert r.json()["error"]["field"] == "message.link"


async def test_unknown_people_refuse_the_whole_send_and_store_nothing(
    container: Container, client: httpx.AsyncClient
) -> None:
    """The audience is checked where it is stored (one join), so a refused send must leave
    neither the send nor any of its audience rows behind."""
    w = await world(container, people_count=3)
    other = await world(container, people_count=1)  # a person of another org is unknown here
    before = await container.queue.counts()  # (creating people publishes person.created)
    stranger = "00000000-0000-4000-8000-00000000abcd"
    r = await send(client, w, user_ids=[*w.person_ids, stranger, "not-a-guid"])
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == "user_ids"
    assert "'not-a-guid'" in r.json()["error"]["message"]
    r = await send(client, w, user_ids=[w.person_ids[0], stranger, w.person_ids[1]])
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["field"], error["message"]) == (
        "user_ids", f"1 user id(s) are not people of this organization, e.g. '{stranger}'")
    r = await send(client, w, user_ids=[w.person_ids[0], other.person_ids[0]])
    assert r.status_code == 400, r.text
    async with container.db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(t.sends))).scalar() == 0
        assert (await conn.execute(
            select(func.count()).select_from(t.send_audience))).scalar() == 0
    assert await container.queue.counts() == before


async def test_person_ids_in_any_case_or_braces_reach_the_person_once(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    w = await world(container, dry_run_on_register=False)
    person = w.person_ids[0]
    await register(container, client, w, person, FcmDeviceToken="fcm-case")
    r = await send(client, w, user_ids=[person.upper(), "{" + person + "}", person])
    assert r.status_code == 202, r.text
    assert r.json()["user_ids"] == [person]
    await drain(container)
    got = await get(client, w, r.json()["id"])
    assert got["counts"] == {"accepted": 1}
    assert got["user_ids"] == [person]
