"""Device registration through the CIJ-compatible HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from clarion.bootstrap import Container
from clarion.domain.outcomes import Platform
from clarion.providers.fake import FakeSender
from clarion.services.events import PERSON_EVENTS
from clarion.store import tables as t
from tests.factories import World, apns_token, b64u, drain, world

pytestmark = pytest.mark.integration


def base(w: World) -> str:
    return f"/api/v1.0/orgs/{w.org_id}/pushdeviceregistration"


def body(w: World, user: str, **token: Any) -> dict[str, Any]:
    return {"MobileAppId": w.app_id, "UserId": user, "ApiToken": w.api_token, **token}


TRACK = {"x-ms-track-registration": "true"}


async def status(client: httpx.AsyncClient, w: World, ids: list[str]) -> list[dict[str, Any]]:
    r = await client.post(f"{base(w)}/devices/status/", json={
        "RegistrationRequestIds": ids, "MobileAppId": w.app_id, "ApiToken": w.api_token})
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()
    return out


async def devices_of(client: httpx.AsyncClient, w: World, person: str) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/orgs/{w.org_id}/people/{person}/devices",
                         headers={"authorization": f"Bearer {w.admin_token}"})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def count(c: Container, table: Any) -> int:
    async with c.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_tracked_registration_goes_pending_then_success(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    token = apns_token()
    r = await client.post(f"{base(w)}/devices", json=body(w, w.person_ids[0],
                                                          ApnsDeviceToken=token), headers=TRACK)
    assert r.status_code == 202
    rid = r.json()["RegistrationRequestId"]
    assert (await status(client, w, [rid]))[0]["Status"] == "Pending"
    assert await drain(container) >= 1
    assert await status(client, w, [rid]) == [
        {"RegistrationRequestId": rid, "Status": "Success", "FailureReason": None}]
    devs = await devices_of(client, w, w.person_ids[0])
    assert [(d["platform"], d["token"], d["state"]) for d in devs] == [("ios", token, "active")]


async def test_untracked_registration_has_an_empty_body_and_keeps_no_status(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    r = await client.post(f"{base(w)}/devices", json=body(w, w.person_ids[0],
                                                          FcmDeviceToken="fcm-token-1"))
    assert r.status_code == 202
    assert r.content == b""
    await drain(container)
    assert len(await devices_of(client, w, w.person_ids[0])) == 1
    assert await count(container, t.registration_requests) == 0


async def test_an_untracked_registration_rides_in_its_job_and_a_rerun_changes_nothing(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container, token_owner_policy="move")
    token = apns_token()
    # One batch: the same token for two people, then a cleanup of the first: the last
    # registration in accept order owns the token.
    r = await client.post(f"{base(w)}/devices/batch", json=[
        body(w, w.person_ids[0], ApnsDeviceToken=token),
        body(w, w.person_ids[1], ApnsDeviceToken=token)])
    assert r.status_code == 202
    assert await count(container, t.registration_requests) == 0  # no row per request
    queued = [j for j in await container.queue.list_jobs(state="queued")
              if j.kind != PERSON_EVENTS.name]  # (the people's person.created, for journeys)
    assert [j.kind for j in queued] == ["registration.process"]
    items = queued[0].payload["ids"]
    assert [i["user_id"] for i in items] == w.person_ids[:2]
    assert {i["token"] for i in items} == {token}
    await drain(container)
    assert len(await devices_of(client, w, w.person_ids[0])) == 0
    assert [d["state"] for d in await devices_of(client, w, w.person_ids[1])] == ["active"]
    # The same job run again (a worker died after processing, before completing the job):
    from clarion.services.registration import ProcessRequests
    await container.processor.process(ProcessRequests.decode({"ids": items}))
    await drain(container)
    assert len(await devices_of(client, w, w.person_ids[0])) == 0
    assert [d["state"] for d in await devices_of(client, w, w.person_ids[1])] == ["active"]
    assert await count(container, t.devices) == 1


async def test_batch_status_comes_back_in_request_order_with_reasons(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    good = apns_token()
    items = [
        body(w, w.person_ids[0], ApnsDeviceToken=good),
        body(w, w.person_ids[0], ApnsDeviceToken="a" * 65),
        body(w, "00000000-0000-0000-0000-00000000beef", FcmDeviceToken="fcm-x"),
        body(w, w.person_ids[1], FcmDeviceToken="fcm-dead-token"),  # fake provider: Unregistered
        body(w, w.person_ids[1], ApnsDeviceToken="not-hex!"),
    ]
    r = await client.post(f"{base(w)}/devices/batch", json=items, headers=TRACK)
    assert r.status_code == 202
    ids = [x["RegistrationRequestId"] for x in r.json()]
    assert len(ids) == 5
    await drain(container)
    got = await status(client, w, list(reversed(ids)))
    assert [g["RegistrationRequestId"] for g in got] == list(reversed(ids))
    assert [(g["Status"], g["FailureReason"]) for g in reversed(got)] == [
        ("Success", None),
        ("Failed", "DeviceTokenTooLong"),
        ("Failed", "UserNotFound"),
        ("Failed", "DryRunSendingFailed"),
        ("Failed", "InvalidDeviceToken"),
    ]
    detail = await client.get(f"/v1/orgs/{w.org_id}/registrations/{ids[3]}",
                              headers={"authorization": f"Bearer {w.admin_token}"})
    assert "Unregistered" in detail.json()["detail"]


async def test_same_user_app_token_again_is_duplicate_exists(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    doc = body(w, w.person_ids[0], FcmDeviceToken="fcm-1")
    first = (await client.post(f"{base(w)}/devices", json=doc, headers=TRACK)).json()
    await drain(container)
    second = (await client.post(f"{base(w)}/devices", json=doc, headers=TRACK)).json()
    await drain(container)
    got = await status(client, w, [first["RegistrationRequestId"],
                                   second["RegistrationRequestId"]])
    assert [(g["Status"], g["FailureReason"]) for g in got] == [
        ("Success", None), ("Failed", "DuplicateExists")]


async def test_a_bad_api_token_is_a_400_and_leaves_no_trace(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    doc = body(w, w.person_ids[0], FcmDeviceToken="fcm-1")
    for bad in ({**doc, "ApiToken": "clr_app_forged"},
                {**doc, "MobileAppId": "3f1c2d7e-0000-4000-8000-000000000000"}):
        r = await client.post(f"{base(w)}/devices", json=bad, headers=TRACK)
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "ApiTokenNotValid"
    other = await world(container)  # another org's id in the path with this org's app
    r = await client.post(f"/api/v1.0/orgs/{other.org_id}/pushdeviceregistration/devices",
                          json=doc)
    assert r.status_code == 400
    assert await count(container, t.registration_requests) == 0
    # Nothing queued but the people's person.created events (journeys listen for them).
    assert await count(container, t.jobs.select().where(
        t.jobs.c.kind != PERSON_EVENTS.name).subquery()) == 0


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b"42", b'{"MobileAppId": 1}'])
async def test_malformed_bodies_get_400(
    container: Container, client: httpx.AsyncClient, raw: bytes
) -> None:
    w = await world(container, people_count=0)
    r = await client.post(f"{base(w)}/devices", content=raw,
                          headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["message"]


async def test_revoked_token_between_accept_and_processing_fails_with_api_token_not_valid(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    r = await client.post(f"{base(w)}/devices", headers=TRACK,
                          json=body(w, w.person_ids[0], FcmDeviceToken="fcm-1"))
    rid = r.json()["RegistrationRequestId"]
    tokens = await container.apps.tokens_of(w.org_id, w.app_id)
    await container.apps.revoke_token(w.org_id, w.app_id, tokens[0].id)
    await drain(container)
    async with container.db.read() as conn:
        row = (await conn.execute(select(t.registration_requests).where(
            t.registration_requests.c.id == rid))).one()
    assert (row.status, row.failure_reason) == ("Failed", "ApiTokenNotValid")


async def test_dry_run_credential_error_flags_the_app_and_retry_later_waits(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    w = await world(container)
    r1 = await client.post(f"{base(w)}/devices", headers=TRACK,
                           json=body(w, w.person_ids[0], FcmDeviceToken="fcm-badcreds"))
    r2 = await client.post(f"{base(w)}/devices", headers=TRACK,
                           json=body(w, w.person_ids[1], FcmDeviceToken="fcm-retry"))
    await drain(container)
    got = await status(client, w, [r1.json()["RegistrationRequestId"],
                                   r2.json()["RegistrationRequestId"]])
    assert (got[0]["Status"], got[0]["FailureReason"]) == ("Failed", "DryRunSendingFailed")
    assert got[1]["Status"] == "Pending"  # re-queued for later, not failed, not lost
    app = await container.apps.get(w.org_id, w.app_id)
    assert app.credential_status[Platform.ANDROID].state == "invalid"
    queued = [j for j in await container.queue.list_jobs(state="queued")
              if j.kind != PERSON_EVENTS.name]  # (the people's person.created, for journeys)
    assert [j.kind for j in queued] == ["registration.process"]
    assert queued[0].run_at_ms > container.clock.epoch_ms()
    assert all(s.dry_run for s in fake_sender.sent)


async def test_dry_run_details_say_whether_a_failure_is_final_or_retried(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    admin = {"authorization": f"Bearer {w.admin_token}"}
    dead, retry = [(await client.post(f"{base(w)}/devices", headers=TRACK, json=body(
        w, w.person_ids[i], FcmDeviceToken=token))).json()["RegistrationRequestId"]
        for i, token in enumerate(("fcm-dead", "fcm-retry"))]

    async def detail(request_id: str) -> tuple[str, str]:
        got = (await client.get(f"/v1/orgs/{w.org_id}/registrations/{request_id}",
                                headers=admin)).json()
        return got["status"], got["detail"]

    await drain(container)
    assert await detail(dead) == ("Failed", "final, not retried: the android provider refused "
                                  "the test push: Unregistered: fake provider: token contains "
                                  "'dead'")
    # Still Pending, and saying why: the provider asked to retry.
    assert await detail(retry) == ("Pending", "the test push through android failed (attempt 1 "
                                   "of 6; retried in 1 s): ServiceUnavailable: fake provider: "
                                   "token contains 'retry'")
    for _ in range(10):  # make the retries due at once, until the attempts are used up
        async with container.db.write() as conn:
            await conn.execute(t.jobs.update().values(run_at=0))
        await drain(container)
    assert await detail(retry) == ("Failed", "final, not retried: the test push through "
                                   "android failed 6 times: ServiceUnavailable: fake provider: "
                                   "token contains 'retry'")


async def test_dry_run_can_be_turned_off_per_app(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    w = await world(container, dry_run_on_register=False)
    r = await client.post(f"{base(w)}/devices", headers=TRACK,
                          json=body(w, w.person_ids[0], FcmDeviceToken="fcm-dead"))
    await drain(container)
    got = await status(client, w, [r.json()["RegistrationRequestId"]])
    assert got[0]["Status"] == "Success"
    assert fake_sender.sent == []


@pytest.mark.parametrize(("policy", "expect_first"), [("move", 0), ("allow", 1)])
async def test_token_owner_policy(
    container: Container, client: httpx.AsyncClient, policy: str, expect_first: int
) -> None:
    w = await world(container, token_owner_policy=policy)
    token = apns_token()
    await client.post(f"{base(w)}/devices", json=body(w, w.person_ids[0], ApnsDeviceToken=token))
    await drain(container)
    await client.post(f"{base(w)}/devices", json=body(w, w.person_ids[1], ApnsDeviceToken=token))
    await drain(container)
    assert len(await devices_of(client, w, w.person_ids[0])) == expect_first
    assert len(await devices_of(client, w, w.person_ids[1])) == 1


async def test_device_cap_evicts_the_oldest(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container, max_devices_per_person=2)
    tokens = [apns_token() for _ in range(3)]
    for tok in tokens:
        await client.post(f"{base(w)}/devices",
                          json=body(w, w.person_ids[0], ApnsDeviceToken=tok))
        await drain(container)
        await asyncio.sleep(0.01)
    held = {d["token"] for d in await devices_of(client, w, w.person_ids[0])}
    assert held == set(tokens[1:])


async def test_cleanup_one_token_or_all(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    toks = [apns_token() for _ in range(3)]
    await client.post(f"{base(w)}/devices/batch",
                      json=[body(w, w.person_ids[0], ApnsDeviceToken=x) for x in toks])
    await drain(container)
    one = {"MobileAppId": w.app_id, "ApiToken": w.api_token, "UserId": w.person_ids[0],
           "DeviceToken": toks[0].upper()}
    r = await client.post(f"{base(w)}/devices/cleanup", json=one)
    assert r.status_code == 202
    await drain(container)
    assert len(await devices_of(client, w, w.person_ids[0])) == 2
    everything = {k: v for k, v in one.items() if k != "DeviceToken"}
    r = await client.post(f"{base(w)}/devices/cleanup/batch", json=everything)
    assert r.status_code == 202
    await drain(container)
    assert await devices_of(client, w, w.person_ids[0]) == []


async def test_web_push_subscription_registers_a_web_device(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    sub = {"endpoint": "https://push.example.net/send/abc",
           "keys": {"p256dh": b64u(65), "auth": b64u(16)}}
    r = await client.post(f"{base(w)}/devices", headers=TRACK,
                          json=body(w, w.person_ids[0], WebPushSubscription=sub))
    assert r.status_code == 202
    await drain(container)
    assert (await status(client, w, [r.json()["RegistrationRequestId"]]))[0]["Status"] == \
        "Success"
    devs = await devices_of(client, w, w.person_ids[0])
    assert devs[0]["platform"] == "web"


async def test_status_without_trailing_slash_and_unknown_ids(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container, people_count=0)
    unknown = "11111111-2222-4333-8444-555555555555"
    r = await client.post(f"{base(w)}/devices/status", json={
        "RegistrationRequestIds": [unknown], "MobileAppId": w.app_id, "ApiToken": w.api_token})
    assert r.status_code == 200
    assert r.json()[0]["Status"] == "Pending"


class _Receiver:
    """A tiny HTTP server on 127.0.0.1 that records the POSTs it gets."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.got = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, v in
                   (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        payload = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((headers, json.loads(payload)))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()
        self.got.set()


async def test_callback_is_signed_and_carries_the_custom_headers(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    rx = _Receiver()
    server = await asyncio.start_server(rx.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook?x=1"
    try:
        r = await client.post(
            f"{base(w)}/devices", json=body(w, w.person_ids[0], FcmDeviceToken="fcm-cb"),
            headers={"x-ms-status-callback-url": url,
                     "x-ms-callback-url-headers": json.dumps({"X-Secret": "s3"})})
        assert r.status_code == 202
        await drain(container)
        await asyncio.wait_for(rx.got.wait(), 5)
    finally:
        server.close()
    headers, payload = rx.requests[0]
    expected = base64.b64encode(hmac.new(w.api_token.encode(), url.encode(),
                                         hashlib.sha256).digest()).decode()
    assert payload == {"Status": "Success", "Signature": expected, "FailureReason": None}
    assert headers["x-secret"] == "s3"


async def test_callback_to_a_private_address_is_refused_by_default(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    container.settings.webhook_allow_private = False
    r = await client.post(f"{base(w)}/devices",
                          json=body(w, w.person_ids[0], FcmDeviceToken="fcm-1"),
                          headers={"x-ms-callback-url": "http://127.0.0.1:9/hook"})
    assert r.status_code == 400
    assert "CLARION_WEBHOOK_ALLOW_PRIVATE" in r.json()["error"]["fix"]
    assert await count(container, t.registration_requests) == 0


async def test_a_huge_backlog_is_processed_in_bounded_statements(pg_url: str, tmp_path: Any,
                                                                 fake_sender: FakeSender) -> None:
    """33,000 pending registrations in one processing call: more than asyncpg's 32,767 bound
    parameters if any IN list were not chunked (it once dead-lettered such jobs)."""
    from clarion.bootstrap import build
    from clarion.domain.registration import parse_device_batch
    from clarion.services.registration import ProcessRequests
    from clarion.store.migrate import upgrade
    from tests.conftest import make_settings

    await asyncio.to_thread(upgrade, pg_url)
    c = build(make_settings(pg_url, tmp_path), senders=dict.fromkeys(Platform, fake_sender))
    await c.start()
    try:
        w = await world(c, people_count=1, dry_run_on_register=False,
                        max_devices_per_person=1000)
        ids: list[str] = []
        for start in range(0, 33_000, 100):
            batch = parse_device_batch([body(w, w.person_ids[0], FcmDeviceToken=f"t-{i}")
                                        for i in range(start, start + 100)])
            ids += await c.registration.accept_devices(w.org_id, batch, tracked=True,
                                                       callback=None)
        await c.processor.process(ProcessRequests(list(ids)))
        async with c.db.read() as conn:
            states = dict((await conn.execute(
                select(t.registration_requests.c.status, func.count())
                .group_by(t.registration_requests.c.status))).all())
            devices = (await conn.execute(
                select(func.count()).select_from(t.devices))).scalar_one()
        assert states == {"Success": 33_000}
        assert devices == 1000  # the cap per person: the oldest were evicted
    finally:
        await c.close()


async def test_callback_headers_that_would_reframe_the_callback_are_refused(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    for name in ("Host", "content-length", "Transfer-Encoding", "Connection", "Upgrade"):
        r = await client.post(f"{base(w)}/devices",
                              json=body(w, w.person_ids[0], FcmDeviceToken="fcm-1"), headers={
                                  **TRACK, "x-ms-callback-url": "https://backend.contoso.com/h",
                                  "x-ms-callback-url-headers": json.dumps({name: "x"})})
        assert r.status_code == 400, (name, r.text)
        error = r.json()["error"]
        assert error["field"] == "x-ms-callback-url-headers"
        assert repr(name) in error["message"]
    assert await count(container, t.registration_requests) == 0


async def test_a_callback_url_with_a_control_character_is_refused(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    for header in ("x-ms-callback-url", "x-ms-status-callback-url"):
        r = await client.post(f"{base(w)}/devices",
                              json=body(w, w.person_ids[0], FcmDeviceToken="fcm-1"),
                              headers={**TRACK, header: "https://backend.contoso.com/h\x01"})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["field"] == header
    assert await count(container, t.registration_requests) == 0
