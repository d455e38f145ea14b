"""The CIJ interaction API end to end through the ASGI app, on SQLite and PostgreSQL:
accepted and refused shapes, uniques, batching, and the published events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from clarion.api.app import create_app
from clarion.api.routes import cij_interactions
from clarion.bootstrap import Container
from clarion.domain.interactions import ClientRateLimiter, InteractionEvent
from clarion.providers.fake import FakeSender
from clarion.services import events
from clarion.services.interactions import RECORD
from clarion.store import tables as t
from clarion.worker.tasks import build_handlers
from tests.factories import World, apns_token, b64u, drain, recorded, world

pytestmark = pytest.mark.integration


@pytest.fixture
async def schema(container: Container) -> None:
    """Tables the migration may not have yet while features land in parallel (no-op later)."""
    async with container.db.write_engine.begin() as conn:
        await conn.run_sync(t.metadata.create_all, checkfirst=True)


@pytest.fixture
async def client(container: Container, schema: None) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@dataclass
class Sent:
    w: World
    send_id: str
    ios: str  # person 0's APNs token
    fcm: str  # person 0's FCM token
    web: str  # person 0's Web Push endpoint
    other: str  # person 1's FCM token: registered, but not a recipient of the send
    deliveries: dict[str, str]  # token -> delivery id
    links: dict[str, str]  # token -> tracked link path (/l/...)


async def _register(client: httpx.AsyncClient, w: World, person: str, **token: Any) -> None:
    r = await client.post(f"/api/v1.0/orgs/{w.org_id}/pushdeviceregistration/devices",
                          json={"MobileAppId": w.app_id, "UserId": person,
                                "ApiToken": w.api_token, **token})
    assert r.status_code == 202, r.text


async def sent_world(c: Container, client: httpx.AsyncClient, fake: FakeSender,
                     link: str = "https://contoso.com/offer?id=7") -> Sent:
    """An org whose send reached person 0's phone, Android device and browser."""
    w = await world(c, dry_run_on_register=False)
    ios, fcm = apns_token(), f"fcm-{uuid.uuid4().hex}"
    web = f"https://push.example.net/send/{uuid.uuid4().hex}"
    other = f"fcm-{uuid.uuid4().hex}"
    await _register(client, w, w.person_ids[0], ApnsDeviceToken=ios)
    await _register(client, w, w.person_ids[0], FcmDeviceToken=fcm)
    await _register(client, w, w.person_ids[0], WebPushSubscription={
        "endpoint": web, "keys": {"p256dh": b64u(65), "auth": b64u(16)}})
    await _register(client, w, w.person_ids[1], FcmDeviceToken=other)
    await drain(c)
    r = await client.post(f"/v1/orgs/{w.org_id}/sends",
                          json={"app_id": w.app_id, "user_id": w.person_ids[0],
                                "message": {"title": "Hi", "body": "There", "link": link}},
                          headers={"authorization": f"Bearer {w.admin_token}"})
    assert r.status_code == 202, r.text
    send_id = r.json()["id"]
    await drain(c)
    mine = [s for s in fake.sent if not s.dry_run and s.notification.tracking_id == send_id]
    assert len(mine) == 3
    deliveries = {s.device.token: s.delivery_id for s in mine}
    links = {s.device.token: "/l/" + (s.notification.link or "").rsplit("/l/", 1)[1]
             for s in mine}
    return Sent(w, send_id, ios, fcm, web, other, deliveries, links)


def events_path(org_id: str) -> str:
    return f"/api/v1.0/orgs/{org_id}/pushdatareceiver/events"


def legacy_path(org_id: str, tracking_id: str) -> str:
    return f"/api/v1.0/orgs/{org_id}/pushchannel/event/trackings/{tracking_id}"


async def report(client: httpx.AsyncClient, s: Sent, token: str, status: Any = 1,
                 **extra: Any) -> httpx.Response:
    return await client.post(events_path(s.w.org_id), json={
        "TrackingId": s.send_id, "DeviceToken": token, "PushNotificationStatus": status,
        **extra})


async def interactions(c: Container) -> list[Any]:
    await recorded(c)
    async with c.db.read() as conn:
        return list((await conn.execute(select(t.interactions).order_by(t.interactions.c.id)))
                    .all())


async def rolled(c: Container, send_id: str) -> dict[str, int]:
    C = t.report_counters
    await recorded(c)
    async with c.db.read() as conn:
        rows = (await conn.execute(
            select(C.c.metric, func.sum(C.c.value)).where(C.c.send_id == send_id)
            .group_by(C.c.metric))).all()
    interesting = ("delivered", "opened", "clicked", "dismissed", "unique_")
    return {m: int(v) for m, v in rows if m.startswith(interesting)}


# ------------------------------------------------------------------------------ accepted


async def test_every_accepted_shape_is_recorded_with_its_kind_and_source(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)
    shapes = [(1, "opened"), ("1", "opened"), ("Opened", "opened"), ("opened", "opened"),
              ("Delivered", "delivered"), ("Dismissed", "dismissed"), ("Clicked", "clicked"),
              (0, "clicked")]
    for status, _ in shapes:
        r = await report(client, s, s.fcm, status)
        assert r.status_code == 202, r.text
        assert r.content == b""
    for status, _ in [(0, "clicked"), (1, "opened"), ("Opened", "opened")]:
        r = await client.post(legacy_path(s.w.org_id, s.send_id),
                              json={"DeviceToken": s.fcm, "PushNotificationStatus": status})
        assert r.status_code == 202, r.text
    rows = await interactions(container)
    assert [(r.kind, r.source) for r in rows] == (
        [(k, "cij_events") for _, k in shapes]
        + [("clicked", "cij_legacy"), ("opened", "cij_legacy"), ("opened", "cij_legacy")])
    d = s.deliveries[s.fcm]
    assert {(r.delivery_id, r.send_id, r.org_id, r.app_id, r.person_id, r.platform)
            for r in rows} == {(d, s.send_id, s.w.org_id, s.w.app_id, s.w.person_ids[0],
                                "android")}
    assert [r.first for r in rows] == [True, False, False, False, True, True, True, False,
                                       False, False, False]


async def test_token_forms_apns_any_case_and_web_push_endpoint_or_subscription(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)
    assert (await report(client, s, s.ios.upper())).status_code == 202
    assert (await report(client, s, s.web)).status_code == 202
    sub = {"endpoint": s.web, "keys": {"p256dh": "x", "auth": "y"}}
    assert (await report(client, s, sub, "Delivered")).status_code == 202  # type: ignore[arg-type]
    rows = await interactions(container)
    assert [(r.delivery_id, r.platform) for r in rows] == [
        (s.deliveries[s.ios], "ios"), (s.deliveries[s.web], "web"), (s.deliveries[s.web], "web")]


async def test_a_timestamp_dates_the_interaction_and_its_hour(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)
    at = (datetime.now(UTC) - timedelta(days=2)).replace(minute=5, second=0, microsecond=0)
    r = await report(client, s, s.fcm, "Opened", Timestamp=at.isoformat())
    assert r.status_code == 202, r.text
    row = (await interactions(container))[0]
    occurred = row.occurred_at if row.occurred_at.tzinfo else row.occurred_at.replace(tzinfo=UTC)
    assert occurred == at
    async with container.db.read() as conn:
        hours = set((await conn.execute(select(t.report_counters.c.hour).where(
            t.report_counters.c.metric == "opened"))).scalars())
    assert hours == {int(at.timestamp()) // 3600}


async def test_duplicates_count_in_totals_but_once_in_uniques(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)
    for token, status in [(s.fcm, 1), (s.fcm, "Opened"), (s.ios, 1), (s.fcm, 0), (s.fcm, 0),
                          (s.web, "Delivered"), (s.web, "Delivered")]:
        assert (await report(client, s, token, status)).status_code == 202
    # The same duplicates arriving concurrently land in one batch: still counted once.
    results = await asyncio.gather(*(report(client, s, s.ios, "Dismissed") for _ in range(5)))
    assert {r.status_code for r in results} == {202}
    assert await rolled(container, s.send_id) == {
        "opened": 3, "unique_opened_devices": 2, "unique_opened_people": 1,
        "clicked": 2, "unique_clicked_devices": 1, "unique_clicked_people": 1,
        "unique_engaged_people": 1,
        "delivered": 2, "unique_delivered_devices": 1, "unique_delivered_people": 1,
        "dismissed": 5, "unique_dismissed_devices": 1, "unique_dismissed_people": 1,
    }
    rows = await interactions(container)
    assert len(rows) == 12
    assert sum(r.first for r in rows if r.kind == "dismissed") == 1


# ------------------------------------------------------------------------------- refused


async def _refused(client: httpx.AsyncClient, path: str, content: bytes | str,
                   status: int = 400) -> dict[str, Any]:
    r = await client.post(path, content=content, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()["error"]
    assert body["message"]
    assert body["fix"]
    return body


async def test_every_refused_shape_gets_a_clear_4xx_and_records_nothing(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)
    other_org = await world(container)
    path = events_path(s.w.org_id)

    def doc(**kw: Any) -> bytes:
        import orjson
        base = {"TrackingId": s.send_id, "DeviceToken": s.fcm, "PushNotificationStatus": 1}
        return orjson.dumps({k: v for k, v in {**base, **kw}.items() if v is not ...})

    assert "not valid JSON" in (await _refused(client, path, b"{nope"))["message"]
    assert "JSON object" in (await _refused(client, path, b"[1]"))["message"]
    assert (await _refused(client, path, doc(TrackingId=...)))["field"] == "TrackingId"
    assert (await _refused(client, path, doc(DeviceToken=...)))["field"] == "DeviceToken"
    assert (await _refused(client, path, doc(PushNotificationStatus=...)))["field"] == \
        "PushNotificationStatus"
    assert (await _refused(client, path, doc(PushNotificationStatus=7)))["field"] == \
        "PushNotificationStatus"
    assert (await _refused(client, path, doc(PushNotificationStatus="Read")))["field"] == \
        "PushNotificationStatus"
    assert (await _refused(client, path, doc(TrackingId="12345")))["field"] == "TrackingId"
    assert (await _refused(client, path, doc(Timestamp="2999-01-01T00:00:00Z")))["field"] == \
        "Timestamp"
    assert (await _refused(client, events_path("not-an-org"), doc()))["field"] == "orgId"
    unknown = [
        await _refused(client, path, doc(TrackingId=str(uuid.uuid4()))),  # no such send
        await _refused(client, path, doc(DeviceToken=s.other)),  # registered, not a recipient
        await _refused(client, path, doc(DeviceToken="fcm-never-registered")),
        await _refused(client, events_path(other_org.org_id), doc()),  # another org's path
        await _refused(client, legacy_path(other_org.org_id, s.send_id),
                       doc(TrackingId=...)),
    ]
    assert {u["code"] for u in unknown} == {"UnknownTrackingId"}
    assert len({u["message"] for u in unknown[1:4]}) == 1  # same words whatever the cause
    legacy = await _refused(client, legacy_path(s.w.org_id, "nope"), doc(TrackingId=...))
    assert legacy["field"] == "TrackingId"
    over = container.settings.events_max_body_bytes
    big = b'{"TrackingId": "' + s.send_id.encode() + b'", "x": "' + b"a" * over + b'"}'
    assert (await _refused(client, path, big, 413))["code"] == "payload_too_large"
    assert await interactions(container) == []
    assert await rolled(container, s.send_id) == {}


async def test_a_chunked_body_over_the_limit_is_refused_without_content_length(
    container: Container, client: httpx.AsyncClient, schema: None
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(container.settings.events_max_body_bytes // 1024 + 2):
            yield b" " * 1024

    org = str(uuid.uuid4())
    r = await client.post(events_path(org), content=chunks())
    assert r.status_code == 413
    assert await interactions(container) == []


async def test_clients_over_the_rate_limit_get_429_with_retry_after(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)
    container.interactions.limiter = ClientRateLimiter(0.5, burst=3)
    answers = [await report(client, s, s.fcm) for _ in range(5)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429, 429]
    assert int(answers[3].headers["retry-after"]) >= 1
    assert answers[3].json()["error"]["code"] == "rate_limited"
    assert "CLARION_EVENTS_RATE_PER_CLIENT" in answers[3].json()["error"]["fix"]
    assert len(await interactions(container)) == 3
    container.interactions.limiter = None  # 0 disables: nothing is refused any more
    assert (await report(client, s, s.fcm)).status_code == 202


async def test_a_batch_of_reports_is_recorded_all_or_nothing(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)

    def item(token: str, status: Any = 1) -> dict[str, Any]:
        return {"TrackingId": s.send_id, "DeviceToken": token, "PushNotificationStatus": status}

    path = events_path(s.w.org_id)
    refused = await client.post(path, json=[item(s.fcm), item(s.other), item(s.ios)])
    assert refused.status_code == 400
    assert refused.json()["error"]["message"].startswith("item 1: ")
    assert refused.json()["error"]["code"] == "UnknownTrackingId"
    malformed = await client.post(path, json=[item(s.fcm), item(s.ios, "Read")])
    assert malformed.json()["error"]["message"].startswith("item 1: ")
    assert (await client.post(path, json=[])).status_code == 400
    too_many = await client.post(path, json=[item(s.fcm)] * 101)
    assert too_many.status_code == 400
    assert "100" in too_many.json()["error"]["message"]
    assert await interactions(container) == []
    ok = await client.post(path, json=[item(s.fcm, "Delivered"), item(s.ios), item(s.web, 0)])
    assert ok.status_code == 202, ok.text
    assert [(r.kind, r.platform) for r in await interactions(container)] == [
        ("delivered", "android"), ("opened", "ios"), ("clicked", "web")]
    container.interactions.limiter = ClientRateLimiter(0.5, burst=4)
    assert (await client.post(path, json=[item(s.fcm)] * 3)).status_code == 202
    limited = await client.post(path, json=[item(s.fcm)] * 2)  # one token left, two asked
    assert limited.status_code == 429
    assert len(await interactions(container)) == 6


# ----------------------------------------------------------------- lookups and batching


async def test_concurrent_reports_share_lookups_and_transactions(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)
    lookup = container.interactions.lookup
    before = lookup.queries
    tokens = [s.ios, s.fcm, s.web]
    results = await asyncio.gather(*(report(client, s, tok, st) for tok in tokens
                                     for st in ("Delivered", "Opened")))
    assert {r.status_code for r in results} == {202}
    assert lookup.queries - before == 1  # six reports, three pairs, one query
    await asyncio.gather(*(report(client, s, tok, 0) for tok in tokens))
    assert lookup.queries - before == 1  # known pairs come from the cache
    async with container.db.read() as conn:
        record_jobs = (await conn.execute(select(t.jobs.c.payload).where(
            t.jobs.c.kind == RECORD.name))).scalars().all()
    assert sum(len(p["ids"]) for p in record_jobs) == 9
    assert len(record_jobs) < 9  # one record job per group-commit batch, not per report
    rows = await interactions(container)
    assert len(rows) == 9
    async with container.db.read() as conn:
        jobs = (await conn.execute(select(t.jobs.c.payload).where(
            t.jobs.c.kind == events.INTERACTION_EVENTS.name))).scalars().all()
    published = sorted(i for p in jobs for i in p["ids"])
    assert published == sorted(r.id for r in rows)  # each interaction published once
    assert len(jobs) == 1  # one event job per record transaction, not per report


async def test_an_accepted_report_waits_in_its_job_and_is_recorded_exactly_once(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)
    assert (await report(client, s, s.fcm, 1)).status_code == 202
    async with container.db.read() as conn:  # accepted: committed in its job, not yet recorded
        assert (await conn.execute(select(t.interactions))).all() == []
    record = build_handlers(container)[RECORD.name]
    slow = await container.queue.claim(worker_id="slow", limit=10, kinds=[RECORD.name])
    assert len(slow) == 1 and slow[0].payload["ids"][0][:2] == ["opened", "cij_events"]
    assert slow[0].payload["ids"][0][3] == s.deliveries[s.fcm]
    # The slow worker's lease runs out; another worker takes the job over and records it.
    await container.queue.fail_many(slow, "lease ran out", retry_in_seconds=0)
    fast = await container.queue.claim(worker_id="fast", limit=10, kinds=[RECORD.name])
    assert [j.id for j in fast] == [j.id for j in slow]
    await record(fast)
    await record(slow)  # finishes late: finds its job done, rolls back
    await record(fast)  # a re-run after a crash before the worker completed it: the same
    rows = await interactions(container)
    assert [(r.kind, r.first, r.delivery_id) for r in rows] == [
        ("opened", True, s.deliveries[s.fcm])]
    assert (await rolled(container, s.send_id))["opened"] == 1
    async with container.db.read() as conn:
        assert (await conn.execute(select(t.jobs).where(t.jobs.c.kind == RECORD.name))).all() == []


async def test_the_documented_fastapi_routes_answer_like_the_fast_path(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)
    plain = FastAPI()
    plain.state.container = container
    plain.include_router(cij_interactions.router)
    transport = httpx.ASGITransport(app=plain)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as routed:
        ok = await routed.post(events_path(s.w.org_id), json={
            "TrackingId": s.send_id, "DeviceToken": s.fcm, "PushNotificationStatus": 1})
        legacy = await routed.post(legacy_path(s.w.org_id, s.send_id),
                                   json={"DeviceToken": s.fcm, "PushNotificationStatus": 0})
        bad = await routed.post(events_path(s.w.org_id), content=b"{")
        big = await routed.post(events_path(s.w.org_id),
                                content=b"x" * (container.settings.events_max_body_bytes + 1))
    assert (ok.status_code, legacy.status_code, bad.status_code, big.status_code) == (
        202, 202, 400, 413)
    assert [r.source for r in await interactions(container)] == ["cij_events", "cij_legacy"]
    spec = (await client.get("/openapi.json")).json()["paths"]
    assert "/api/v1.0/orgs/{org_id}/pushdatareceiver/events" in spec
    assert "/api/v1.0/orgs/{org_id}/pushchannel/event/trackings/{tracking_id}" in spec


# ------------------------------------------------------------------------ published events


async def publish(c: Container) -> int:
    """Record, then run the event jobs now (due PUBLISH_DELAY_MS after their commit)."""
    await recorded(c)
    async with c.db.write() as conn:
        await conn.execute(t.jobs.update().where(t.jobs.c.kind == events.INTERACTION_EVENTS.name)
                           .values(run_at=0))
    return await drain(c, kinds=[events.INTERACTION_EVENTS.name])


class Recorder:
    def __init__(self, fail_times: int = 0) -> None:
        self.calls: list[list[InteractionEvent]] = []
        self.fail_times = fail_times

    async def __call__(self, batch: Sequence[InteractionEvent]) -> None:
        self.calls.append(list(batch))
        if self.fail_times > 0:
            self.fail_times -= 1
            raise RuntimeError("subscriber down")

    @property
    def ids(self) -> list[int]:
        return [e.id for call in self.calls for e in call]


async def test_interactions_are_published_to_subscribers_by_topic(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)
    opened, everything = Recorder(), Recorder()
    container.events.subscribe("interaction.opened", opened, name="opened")
    container.events.subscribe("interaction.*", everything, name="all")
    with pytest.raises(ValueError, match="already registered"):
        container.events.subscribe("interaction.*", everything, name="all")
    with pytest.raises(ValueError, match="unknown topic"):
        container.events.subscribe("interaction.read", everything)
    for token, status in [(s.fcm, "Delivered"), (s.fcm, 1), (s.ios, 1), (s.fcm, 1)]:
        assert (await report(client, s, token, status)).status_code == 202
    await recorded(container)
    async with container.db.read() as conn:
        due = (await conn.execute(select(t.jobs.c.run_at).where(
            t.jobs.c.kind == events.INTERACTION_EVENTS.name))).scalars().all()
    assert min(due) > container.clock.epoch_ms()  # published a moment after the commit
    assert await publish(container) >= 1
    rows = await interactions(container)
    assert everything.ids == [r.id for r in rows]  # each once, in id order
    assert opened.ids == [r.id for r in rows if r.kind == "opened"]
    first = everything.calls[0][1]
    assert (first.topic, first.kind.value, first.source.value, first.first, first.send_id,
            first.delivery_id, first.person_id, first.platform, first.org_id) == (
        "interaction.opened", "opened", "cij_events", True, s.send_id, s.deliveries[s.fcm],
        s.w.person_ids[0], "android", s.w.org_id)
    assert first.occurred_at.tzinfo is not None
    assert [e.first for e in opened.calls[0]] == [True, True, False]
    assert await publish(container) == 0  # nothing left


async def test_a_failing_subscriber_is_retried_alone(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)
    healthy, flaky = Recorder(), Recorder(fail_times=1)
    container.events.subscribe("interaction.*", healthy, name="healthy")
    container.events.subscribe("interaction.*", flaky, name="flaky")
    assert (await report(client, s, s.fcm)).status_code == 202
    await publish(container)
    await publish(container)  # the retry of the failed subscriber
    row = (await interactions(container))[0]
    assert healthy.ids == [row.id]  # not called again for the other's failure
    assert flaky.ids == [row.id, row.id]  # failed once, then delivered


async def test_a_worker_crash_redelivers_with_the_same_dedupe_key(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)
    seen: dict[int, int] = {}
    effects: list[int] = []

    async def idempotent(batch: Sequence[InteractionEvent]) -> None:
        for e in batch:
            seen[e.id] = seen.get(e.id, 0) + 1
            if seen[e.id] == 1:  # the documented way: dedupe on event.id
                effects.append(e.id)

    container.events.subscribe("interaction.*", idempotent, name="idempotent")
    for token in (s.fcm, s.ios):
        assert (await report(client, s, token)).status_code == 202
    await recorded(container)
    handlers = build_handlers(container)
    async with container.db.write() as conn:
        await conn.execute(t.jobs.update().where(t.jobs.c.kind == events.INTERACTION_EVENTS.name)
                           .values(run_at=0))
    claimed = await container.queue.claim(worker_id="doomed", limit=10,
                                          kinds=[events.INTERACTION_EVENTS.name])
    assert claimed
    await handlers[events.INTERACTION_EVENTS.name](claimed)
    # The worker dies before completing: its lease runs out and the job is claimable again.
    await container.queue.fail_many(claimed, "worker lost", retry_in_seconds=0)
    await publish(container)
    ids = [r.id for r in await interactions(container)]
    assert sorted(seen) == ids
    assert set(seen.values()) == {2}  # at least once: delivered again after the crash
    assert effects == ids  # exactly once for a subscriber that dedupes on the id
