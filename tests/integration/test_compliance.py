"""Compliance in the send path, on SQLite and PostgreSQL, with a frozen clock: quiet times hold
and release, frequency caps block (exactly, under concurrent fan-outs), consent, expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from clarion.api.app import create_app
from clarion.bootstrap import Container, build
from clarion.clock import FrozenClock
from clarion.domain.outcomes import Platform
from clarion.providers.fake import FakeSender
from clarion.services.fanout import FanOutPage
from clarion.store.migrate import upgrade
from tests.conftest import make_settings
from tests.factories import World, apns_token, drain, world
from tests.integration.test_sending import admin, get, register, send

pytestmark = pytest.mark.integration

EVENING_PARIS = datetime(2026, 6, 10, 20, 30, tzinfo=UTC)  # 22:30 in Paris (CEST)
NIGHT = {"name": "Nights", "general": {"commercial": {"windows": [
    {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "21:00",
     "end": "08:00"}]}}}


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(EVENING_PARIS)


@pytest.fixture
async def frozen(db_url: str, tmp_path: Path, fake_sender: FakeSender,
                 clock: FrozenClock) -> AsyncIterator[Container]:
    await asyncio.to_thread(upgrade, db_url)
    c = build(make_settings(db_url, tmp_path), clock=clock,
              senders=dict.fromkeys(Platform, fake_sender))
    await c.start()
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
async def api(frozen: Container) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(frozen))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def put(client: httpx.AsyncClient, w: World, path: str, body: Any) -> httpx.Response:
    return await client.put(f"/v1/orgs/{w.org_id}/{path}", json=body, headers=admin(w))


def delivered(fake: FakeSender) -> list[str]:
    return [s.device.token for s in fake.sent if not s.dry_run]


async def one_device_each(c: Container, client: httpx.AsyncClient, w: World) -> list[str]:
    tokens = []
    for person in w.person_ids:
        tokens.append(apns_token())
        await register(c, client, w, person, ApnsDeviceToken=tokens[-1])
    return tokens


async def test_a_push_in_quiet_time_is_held_and_leaves_when_it_ends(
        frozen: Container, api: httpx.AsyncClient, fake_sender: FakeSender,
        clock: FrozenClock) -> None:
    w = await world(frozen, dry_run_on_register=False, people_count=1)
    await one_device_each(frozen, api, w)
    assert (await put(api, w, "quiet-times", NIGHT)).status_code == 200
    assert (await put(api, w, "compliance", {"time_zone": "Europe/Paris"})).status_code == 200
    r = await send(api, w, user_id=w.person_ids[0])
    assert r.status_code == 202 and r.json()["category"] == "commercial"
    await drain(frozen)
    got = await get(api, w, r.json()["id"])
    assert (got["state"], got["held"], got["counts"]) == ("held", 1, {})
    assert delivered(fake_sender) == []
    clock.advance(9 * 3600 - 60)  # 07:29 in Paris: still quiet
    await drain(frozen)
    assert delivered(fake_sender) == []
    clock.advance(60 * 31)  # 08:00
    await drain(frozen)
    got = await get(api, w, r.json()["id"])
    assert (got["state"], got["held"], got["counts"]) == ("done", 0, {"accepted": 1})
    assert len(delivered(fake_sender)) == 1
    report = await api.get(f"/v1/orgs/{w.org_id}/reports", headers=admin(w),
                           params={"since": "2026-06-10T00:00:00Z",
                                   "until": "2026-06-12T00:00:00Z"})
    assert report.status_code == 200, report.text
    totals = report.json()["totals"]
    assert totals["held"] == {"total": 1, "by_reason": {"quiet_time": 1}}
    assert totals["inflow"] == 1 and totals["sent"]["people"] == 1
    timeline = await api.get(f"/v1/orgs/{w.org_id}/people/{w.person_ids[0]}/timeline",
                             headers=admin(w))
    kinds = [(e["kind"], e["reason"], e["until"]) for e in timeline.json()["items"]
             if e["kind"] in ("held", "released")]
    assert kinds == [("released", "quiet_time", None),
                     ("held", "quiet_time", "2026-06-11T06:00:00Z")]


async def test_the_person_s_time_zone_comes_before_the_org_s(
        frozen: Container, api: httpx.AsyncClient, fake_sender: FakeSender,
        clock: FrozenClock) -> None:
    w = await world(frozen, dry_run_on_register=False, people_count=0)
    tokyo = await frozen.people.create(w.org_id, {"email": "t@contoso.com",
                                                  "time_zone": "Asia/Tokyo"})
    new_york = await frozen.people.create(w.org_id, {"email": "n@contoso.com",
                                                     "time_zone": "America/New_York"})
    w.person_ids.extend([tokyo.id, new_york.id])
    tokens = await one_device_each(frozen, api, w)
    await put(api, w, "quiet-times", NIGHT)
    await put(api, w, "compliance", {"time_zone": "Europe/Paris"})
    clock.advance(16.5 * 3600)  # 13:00Z: 22:00 in Tokyo, 09:00 in New York, 15:00 in Paris
    r = await send(api, w, user_ids=w.person_ids)
    await drain(frozen)
    assert delivered(fake_sender) == [tokens[1]]  # New York; Tokyo waits for its morning
    got = await get(api, w, r.json()["id"])
    assert (got["held"], got["counts"], got["state"]) == (1, {"accepted": 1}, "held")


async def test_a_frequency_cap_blocks_the_push_that_would_cross_it(
        frozen: Container, api: httpx.AsyncClient, fake_sender: FakeSender,
        clock: FrozenClock) -> None:
    w = await world(frozen, dry_run_on_register=False, people_count=1)
    await one_device_each(frozen, api, w)
    body = {"push": {"per_24h": 1, "per_7d": None, "per_30d": None}}
    r = await put(api, w, "frequency-caps", body)
    assert (r.status_code, r.json()) == (200, body)
    first = await send(api, w, user_id=w.person_ids[0])
    await drain(frozen)
    second = await send(api, w, user_id=w.person_ids[0])
    transactional = await send(api, w, user_id=w.person_ids[0], category="transactional")
    await drain(frozen)
    assert (await get(api, w, first.json()["id"]))["counts"] == {"accepted": 1}
    capped = await get(api, w, second.json()["id"])
    assert (capped["counts"], capped["blocked"], capped["state"]) == (
        {}, {"frequency_cap": 1}, "done")
    assert (await get(api, w, transactional.json()["id"]))["counts"] == {"accepted": 1}
    export = await api.get(f"/v1/orgs/{w.org_id}/sends/{second.json()['id']}/blocked",
                           params={"format": "csv"}, headers=admin(w))
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert export.text.splitlines() == ["user_id,reason,at",
                                        f"{w.person_ids[0]},frequency_cap,{EVENING_PARIS.isoformat()}"]
    assert len(delivered(fake_sender)) == 2
    clock.advance(24 * 3600)  # the first push leaves the rolling window
    third = await send(api, w, user_id=w.person_ids[0])
    await drain(frozen)
    assert (await get(api, w, third.json()["id"]))["counts"] == {"accepted": 1}


async def test_concurrent_fan_outs_never_both_cross_a_cap(
        frozen: Container, api: httpx.AsyncClient, fake_sender: FakeSender) -> None:
    """Two sends' pages run at the same time for the same people (two workers on
    PostgreSQL): per person, exactly one of them passes a cap of one."""
    w = await world(frozen, dry_run_on_register=False, people_count=20)
    await one_device_each(frozen, api, w)
    await put(api, w, "frequency-caps", {"push": {"per_24h": 1}})
    ids = [(await send(api, w, user_ids=w.person_ids)).json()["id"] for _ in range(2)]
    await asyncio.gather(*(frozen.fanout.page(FanOutPage(i, 0)) for i in ids))
    await drain(frozen)
    reads = [await get(api, w, i) for i in ids]
    assert sum(r["counts"].get("accepted", 0) for r in reads) == 20
    assert sum(r["blocked"].get("frequency_cap", 0) for r in reads) == 20
    per_person: dict[str, int] = {}
    for r in reads:
        for d in r["deliveries"]:
            per_person[d["person_id"]] = per_person.get(d["person_id"], 0) + 1
    assert per_person == dict.fromkeys(w.person_ids, 1)


async def test_consent_when_the_org_requires_it(
        frozen: Container, api: httpx.AsyncClient, fake_sender: FakeSender) -> None:
    w = await world(frozen, dry_run_on_register=False, people_count=3)
    tokens = await one_device_each(frozen, api, w)
    yes, no, silent = w.person_ids
    r = await send(api, w, user_ids=w.person_ids)  # off by default: everyone
    await drain(frozen)
    assert (await get(api, w, r.json()["id"]))["counts"] == {"accepted": 3}
    fake_sender.sent.clear()
    r = await put(api, w, "compliance", {"require_consent": True})
    assert r.json()["require_consent"] is True
    for person, opted_in in ((yes, True), (no, False)):
        r = await put(api, w, f"apps/{w.app_id}/people/{person}/consent",
                      {"opted_in": opted_in, "source": "app settings"})
        assert r.status_code == 200 and r.json()["opted_in"] is opted_in
    got = await api.get(f"/v1/orgs/{w.org_id}/apps/{w.app_id}/people/{silent}/consent",
                        headers=admin(w))
    assert got.json()["opted_in"] is None
    r = await send(api, w, user_ids=w.person_ids)
    t = await send(api, w, user_ids=w.person_ids, category="transactional")
    await drain(frozen)
    commercial = await get(api, w, r.json()["id"])
    assert commercial["blocked"] == {"no_consent": 2}
    assert [d["person_id"] for d in commercial["deliveries"]] == [yes]
    assert (await get(api, w, t.json()["id"]))["counts"] == {"accepted": 3}
    assert sorted(delivered(fake_sender)) == sorted([tokens[0], *tokens])


async def test_a_hold_past_the_message_s_time_to_live_is_skipped_as_expired(
        frozen: Container, api: httpx.AsyncClient, fake_sender: FakeSender) -> None:
    w = await world(frozen, dry_run_on_register=False, people_count=1)
    await one_device_each(frozen, api, w)
    await put(api, w, "quiet-times", NIGHT)
    await put(api, w, "compliance", {"time_zone": "Europe/Paris"})
    r = await send(api, w, user_id=w.person_ids[0],
                   message={"title": "Flash sale", "body": "Two hours only", "ttl": 7200})
    await drain(frozen)
    got = await get(api, w, r.json()["id"])
    assert (got["blocked"], got["held"], got["state"]) == ({"expired": 1}, 0, "done")
    assert delivered(fake_sender) == []


@pytest.mark.parametrize(("path", "body", "field"), [
    ("frequency-caps", {"push": {"per_24h": 0}}, "push.per_24h"),
    ("frequency-caps", {"sms": {"per_24h": 1}}, "sms"),
    ("quiet-times", {"name": "x", "general": {"commercial": {"windows": [
        {"start": "9pm", "end": "08:00"}]}}}, "general.commercial.windows[0].start"),
    ("compliance", {"time_zone": "Mars/Olympus"}, "time_zone"),
])
async def test_bad_rules_are_a_400_naming_the_field_and_change_nothing(
        frozen: Container, api: httpx.AsyncClient, path: str, body: Any, field: str) -> None:
    w = await world(frozen, people_count=0)
    r = await put(api, w, path, body)
    assert r.status_code in (400, 422), r.text
    assert field in r.text
    got = await api.get(f"/v1/orgs/{w.org_id}/compliance", headers=admin(w))
    assert got.json() == {"require_consent": False, "time_zone": None, "quiet_times": None,
                          "frequency_caps": {"push": {"per_24h": None, "per_7d": None,
                                                      "per_30d": None}}}


async def test_an_opt_out_is_honoured_even_when_consent_is_not_required(
        frozen: Container, api: httpx.AsyncClient, fake_sender: FakeSender) -> None:
    w = await world(frozen, dry_run_on_register=False, people_count=2)
    tokens = await one_device_each(frozen, api, w)
    r = await put(api, w, f"apps/{w.app_id}/people/{w.person_ids[0]}/consent",
                  {"opted_in": False, "source": "app settings"})
    assert r.status_code == 200
    r = await send(api, w, user_ids=w.person_ids)
    t = await send(api, w, user_ids=w.person_ids, category="transactional")
    await drain(frozen)
    assert (await get(api, w, r.json()["id"]))["blocked"] == {"no_consent": 1}
    assert (await get(api, w, t.json()["id"]))["counts"] == {"accepted": 2}
    assert sorted(delivered(fake_sender)) == sorted([tokens[1], *tokens])


async def test_an_unsubscribe_link_asks_then_records_the_opt_out(
        frozen: Container, api: httpx.AsyncClient, fake_sender: FakeSender) -> None:
    w = await world(frozen, dry_run_on_register=False, people_count=2)
    await one_device_each(frozen, api, w)
    url = frozen.compliance.unsubscribe_url(w.app_id, w.person_ids[0])
    path = url.split("://", 1)[1].split("/", 1)[1]
    page = await api.get(f"/{path}")
    assert page.status_code == 200 and "<form method=\"post\">" in page.text
    consent = f"/v1/orgs/{w.org_id}/apps/{w.app_id}/people/{w.person_ids[0]}/consent"
    assert (await api.get(consent, headers=admin(w))).json()["opted_in"] is None  # GET: nothing
    done = await api.post(f"/{path}")
    assert done.status_code == 200 and "unsubscribed" in done.text
    got = (await api.get(consent, headers=admin(w))).json()
    assert (got["opted_in"], got["source"]) == (False, "unsubscribe link")
    r = await send(api, w, user_ids=w.person_ids)
    await drain(frozen)
    assert (await get(api, w, r.json()["id"]))["blocked"] == {"no_consent": 1}
    forged = path[:-6] + ("AAAAAA" if not path.endswith("AAAAAA") else "BBBBBB")
    assert (await api.post(f"/{forged}")).status_code == 404
    assert (await api.get("/u/short")).status_code == 404


async def test_consents_in_bulk_by_id_or_email_refuse_bad_items_alone(
        frozen: Container, api: httpx.AsyncClient) -> None:
    w = await world(frozen, dry_run_on_register=False, people_count=3)
    items = [{"user_id": w.person_ids[0].upper(), "opted_in": True},
             {"email": "USER1@contoso.com", "opted_in": False, "source": "signup form"},
             {"email": "nobody@contoso.com", "opted_in": True},
             {"user_id": "00000000-0000-0000-0000-000000000000", "opted_in": True}]
    r = await api.post(f"/v1/orgs/{w.org_id}/apps/{w.app_id}/consents",
                       json={"items": items, "source": "crm sync"}, headers=admin(w))
    assert r.status_code == 200, r.text
    assert r.json()["imported"] == 2
    assert [x["index"] for x in r.json()["rejected"]] == [2, 3]
    assert "nobody@contoso.com" in r.json()["rejected"][0]["reason"]

    async def read(person: str) -> Any:
        return (await api.get(f"/v1/orgs/{w.org_id}/apps/{w.app_id}/people/{person}/consent",
                              headers=admin(w))).json()

    assert ((await read(w.person_ids[0]))["opted_in"],
            (await read(w.person_ids[0]))["source"]) == (True, "crm sync")
    assert ((await read(w.person_ids[1]))["opted_in"],
            (await read(w.person_ids[1]))["source"]) == (False, "signup form")
    assert (await read(w.person_ids[2]))["opted_in"] is None
    bad = await api.post(f"/v1/orgs/{w.org_id}/apps/{w.app_id}/consents",
                         json={"items": []}, headers=admin(w))
    assert bad.status_code in (400, 422)


def test_the_cli_imports_consent_from_csv(sqlite_url: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from clarion.cli.main import app
    from tests.conftest import TEST_SECRET

    async def setup() -> World:
        c = build(make_settings(sqlite_url, tmp_path))
        await c.start()
        try:
            return await world(c, dry_run_on_register=False, people_count=2)
        finally:
            await c.close()

    upgrade(sqlite_url)
    w = asyncio.run(setup())
    csv_file = tmp_path / "consent.csv"
    csv_file.write_text(f"user_id,email,opted_in\n{w.person_ids[0]},,yes\n,user1@contoso.com,no\n"
                        ",,maybe\n", encoding="utf-8")
    monkeypatch.setenv("CLARION_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CLARION_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("CLARION_VAR_DIR", str(tmp_path / "var"))
    out = CliRunner().invoke(app, ["consent", "import", "--org", w.org_id, "--app", w.app_id,
                                   str(csv_file), "--json"])
    assert out.exit_code == 0, out.output
    import json
    summary = json.loads(out.output)
    assert summary["imported"] == 2
    assert [r["line"] for r in summary["rejected"]] == [4]


async def test_a_held_personalised_push_leaves_with_its_own_text(
        frozen: Container, api: httpx.AsyncClient, fake_sender: FakeSender,
        clock: FrozenClock) -> None:
    w = await world(frozen, dry_run_on_register=False, people_count=0)
    ada = await frozen.people.create(w.org_id, {"email": "ada@contoso.com",
                                                "first_name": "Ada"})
    w.person_ids.append(ada.id)
    await one_device_each(frozen, api, w)
    doc = {"name": "Hello", "app_id": w.app_id, "category": "commercial",
           "title": "Hello, {{FirstName}}", "body": "News",
           "placeholders": {"FirstName": {"source": "audience", "field": "first_name"}}}
    created = await api.post(f"/v1/orgs/{w.org_id}/messages", json=doc, headers=admin(w))
    assert created.status_code == 201, created.text
    await put(api, w, "quiet-times", NIGHT)
    await put(api, w, "compliance", {"time_zone": "Europe/Paris"})
    r = await api.post(f"/v1/orgs/{w.org_id}/sends", headers=admin(w),
                       json={"message_id": created.json()["id"], "user_id": ada.id})
    assert r.status_code == 202, r.text
    assert r.json()["category"] == "commercial"  # the message's
    await drain(frozen)
    assert delivered(fake_sender) == []
    clock.advance(10 * 3600)  # 08:30 in Paris
    await drain(frozen)
    sent = [s for s in fake_sender.sent if not s.dry_run]
    assert [s.notification.title for s in sent] == ["Hello, Ada"]


async def test_an_unsubscribe_placeholder_renders_each_person_s_own_link(
        frozen: Container, api: httpx.AsyncClient, fake_sender: FakeSender) -> None:
    w = await world(frozen, dry_run_on_register=False, people_count=2)
    await one_device_each(frozen, api, w)
    doc = {"name": "News", "app_id": w.app_id, "category": "commercial", "title": "News",
           "body": "Stop these: {{Stop}}", "data": {"unsubscribe": "{{Stop}}"},
           "placeholders": {"Stop": {"source": "compliance", "field": "unsubscribe_url"}}}
    created = await api.post(f"/v1/orgs/{w.org_id}/messages", json=doc, headers=admin(w))
    assert created.status_code == 201, created.text
    bad = {**doc, "placeholders": {"Stop": {"source": "compliance", "field": "first_name"}}}
    refused = await api.post(f"/v1/orgs/{w.org_id}/messages", json=bad, headers=admin(w))
    assert refused.status_code == 400 and "placeholders.Stop.field" in refused.text
    r = await api.post(f"/v1/orgs/{w.org_id}/sends", headers=admin(w),
                       json={"message_id": created.json()["id"], "user_ids": w.person_ids})
    assert r.status_code == 202, r.text
    await drain(frozen)
    sent = [s for s in fake_sender.sent if not s.dry_run]
    links = {s.device.token: s.notification.data["unsubscribe"] for s in sent}
    assert len(set(links.values())) == 2  # one link per person
    first = next(s for s in sent if s.notification.body.endswith(
        links[s.device.token]))  # the body carries the same link
    path = "/" + links[first.device.token].split("://", 1)[1].split("/", 1)[1]
    assert (await api.post(path)).status_code == 200
    person = next(p for p in w.person_ids
                  if links[first.device.token] == frozen.compliance.unsubscribe_url(w.app_id, p))
    got = await api.get(f"/v1/orgs/{w.org_id}/apps/{w.app_id}/people/{person}/consent",
                        headers=admin(w))
    assert got.json()["opted_in"] is False
