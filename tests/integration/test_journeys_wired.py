"""The issue's journey example wired to the real parts, on SQLite and PostgreSQL, with the fake
sender and a frozen clock: a segment (filter language), three stored push messages, the
journey started through the API, people opening through the CIJ interaction API (recorded,
published on the event bus, waking the waits), the clock moved past PT8S. Each member gets
exactly one ``hello`` per valid device, gold openers get ``perks``, the others ``nudge``,
people outside the segment nothing, and the report's figures add up."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from clarion.bootstrap import Container
from clarion.domain.journeys.engine import LATE_INTERACTION_GRACE
from clarion.domain.outcomes import Platform
from clarion.services.events import OutcomePublication, TriggerPublication
from clarion.store import tables as t
from tests.factories import apns_token, recorded
from tests.integration.journey_rig import Live, live_rig, message

pytestmark = pytest.mark.integration

GRACE_S = LATE_INTERACTION_GRACE.total_seconds()

# The issue's example, as written (issue 14, item 4).
EXAMPLE = """
{"name": "Welcome series", "app_id": "<app id>",
 "entry": {"type": "segment", "segment_id": "<segment id>", "schedule": {"kind": "once"}},
 "steps": [
   {"id": "hello", "type": "push", "message_id": "<message id>"},
   {"id": "opened", "type": "wait_for_interaction", "step": "hello", "interaction": "opened",
    "within": "PT8S", "yes": "tier", "no": "nudge"},
   {"id": "nudge", "type": "push", "message_id": "<second message id>", "next": "end"},
   {"id": "tier", "type": "branch",
    "branches": [{"when": "tier eq 'gold'", "next": "perks"}], "otherwise": "end"},
   {"id": "perks", "type": "push", "message_id": "<third message id>"}],
 "reentry": "never"}
"""


def example(**ids: str) -> dict[str, Any]:
    text = EXAMPLE
    for name, value in ids.items():
        text = text.replace(f"<{name.replace('_', ' ')}>", value)
    out: dict[str, Any] = json.loads(text)
    return out


async def _the_example(r: Live, condition: str) -> dict[str, Any]:
    """The issue's example over a segment of ``condition``, with three stored messages."""
    segment = await r.post("/segments", {"name": condition, "filter": condition})
    ids = {name: (await r.post("/messages", message(r.w.app_id, name)))["id"]
           for name in ("hello", "nudge", "perks")}
    return await r.post("/journeys", example(
        app_id=r.w.app_id, segment_id=segment["id"], message_id=ids["hello"],
        second_message_id=ids["nudge"], third_message_id=ids["perks"]))


@pytest.fixture
async def live(db_url: str, tmp_path: Path) -> AsyncIterator[Live]:
    async with live_rig(db_url, tmp_path) as rig:
        yield rig


async def test_the_issue_example_runs_end_to_end_on_the_real_parts(live: Live) -> None:
    r, w = live, live.w
    people = w.person_ids
    tiers = ["gold", "gold", "silver", "silver", "silver", "gold", None, "gold"]
    for i, (person, tier) in enumerate(zip(people, tiers, strict=True)):
        attributes = {"tier": tier, "welcome": i < 6} if tier else {"welcome": i < 6}
        await r.c.people.update(w.org_id, person, {"first_name": f"P{i}",
                                                   "attributes": attributes})
    # Devices: person 0 has a phone and an Android device; person 3 has one valid device and
    # one already invalid; person 7 (outside the segment) has one too.
    tokens: dict[str, str] = {}
    for i in range(8):
        ios = apns_token()
        tokens[ios] = people[i]
        await r.register(people[i], ApnsDeviceToken=ios)
    fcm = f"fcm-{uuid.uuid4().hex}"
    tokens[fcm] = people[0]
    await r.register(people[0], FcmDeviceToken=fcm)
    dead = f"fcm-dead-{uuid.uuid4().hex}"
    await r.register(people[3], FcmDeviceToken=dead)
    await r.settle()
    # An earlier inline send finds the dead token invalid: the journey must not reach it.
    await r.post("/sends", {"app_id": w.app_id, "user_id": people[3],
                            "message": {"title": "Before", "body": "x"}}, 202)
    await r.settle()
    r.fake.sent.clear()

    journey = await _the_example(r, "welcome eq true")
    # Entry pages, timer batches and event batches read their people together: the
    # per-person reads (StoredFacts) are never needed here.
    per_person = Counter[str]()
    stored = r.c.journey_facts._stored

    async def counted(*args: Any) -> Any:
        per_person["facts"] += 1
        return await type(stored).facts(stored, *args)

    stored.facts = counted  # type: ignore[method-assign]
    await r.post(f"/journeys/{journey['id']}/start", {}, 200)
    await r.settle()

    step_of = await _steps_of_sends(r.c)
    hello = [s for s in r.fake.sent if step_of[s.notification.tracking_id or ""] == "hello"]
    members = set(people[:6])
    by_token = Counter(s.device.token for s in hello)
    assert set(by_token) == {tok for tok, p in tokens.items() if p in members}
    assert set(by_token.values()) == {1}  # one hello per valid device
    assert dead not in by_token
    assert len({s.notification.tracking_id for s in hello}) == 1  # one send for the page

    # Person 0 (gold) opens on one of the two devices, person 2 (silver) clicks.
    opened = {people[0]: 1, people[2]: 0}
    for s in hello:
        status = opened.get(tokens[s.device.token])
        if status is not None and s.device.platform == Platform.IOS:
            resp = await r.client.post(
                f"/api/v1.0/orgs/{w.org_id}/pushdatareceiver/events",
                json={"TrackingId": s.notification.tracking_id,
                      "DeviceToken": s.device.token, "PushNotificationStatus": status})
            assert resp.status_code in (200, 202), resp.text
    await recorded(r.c)
    await r.settle()
    r.clock.advance(8 + GRACE_S)  # the deadline, and the grace for late opens
    await r.settle()

    step_of = await _steps_of_sends(r.c)
    got = Counter((tokens.get(s.device.token), step_of[s.notification.tracking_id or ""])
                  for s in r.fake.sent)
    perks = {p for p, step in got if step == "perks"}
    nudged = {p for p, step in got if step == "nudge"}
    assert perks == {people[0]}
    assert nudged == members - {people[0], people[2]}
    assert all(n == 1 for (p, step), n in got.items() if p != people[0])
    assert got[(people[0], "hello")] == 2 and got[(people[0], "perks")] == 2  # two devices
    assert not any(p in (people[6], people[7]) for p, _ in got)  # outside: nothing

    report = await r.client.get(f"/v1/orgs/{w.org_id}/journeys/{journey['id']}/report",
                                headers=r.admin)
    assert report.status_code == 200, report.text
    steps = {s["id"]: s for s in report.json()["steps"]}
    assert [s["id"] for s in report.json()["steps"]] == ["hello", "opened", "nudge", "tier",
                                                         "perks"]
    assert steps["hello"]["inflow"] == steps["opened"]["inflow"] == 6
    assert steps["nudge"]["inflow"] == 4 and steps["tier"]["inflow"] == 2
    assert steps["perks"]["inflow"] == 1
    for s in steps.values():
        assert s["inflow"] == s["processing"] + s["processed"] + s["exit"], s
        assert s["processing"] == 0
    assert per_person["facts"] == 0
    channel = steps["hello"]["channel"]
    assert channel["sent"] == {"people": 6, "devices": 7}, channel
    assert channel["opened"]["unique_people"] == 1 and channel["clicked"]["unique_people"] == 1


async def _steps_of_sends(c: Container) -> dict[str, str]:
    """send id -> the journey step it carries."""
    async with c.db.read() as conn:
        rows = (await conn.execute(select(t.sends.c.id, t.sends.c.journey_step_id))).all()
    return {str(i): s or "" for i, s in rows}


def _titles(r: Live, step_of: dict[str, str]) -> dict[tuple[str, str], list[str]]:
    """(device token, journey step) -> the titles the devices got."""
    out: dict[tuple[str, str], list[str]] = {}
    for s in r.fake.sent:
        step = step_of.get(s.notification.tracking_id or "", "")
        out.setdefault((s.device.token, step), []).append(s.notification.title or "")
    return out


async def test_a_trigger_entry_with_a_condition_personalises_with_the_fire_and_branches_on_it(
    live: Live,
) -> None:
    """Fired through the API: ``when`` filters the entry, the push renders the fire's data,
    and a branch after a wait still reads it; ``in_segment`` and ``has_device`` conditions
    are answered by the segments and the person's devices."""
    r, w = live, live.w
    p = w.person_ids
    tokens = {p[i]: apns_token() for i in range(3)}
    for person, token in tokens.items():
        await r.register(person, ApnsDeviceToken=token)
    await r.settle()
    vip = await r.post("/segments", {"name": "VIP", "filter": "vip eq true"})
    await r.c.people.update(w.org_id, p[1], {"attributes": {"vip": True}})
    await r.post("/triggers", {"name": "cart_abandoned",
                               "attributes": {"cart_total": "number", "city": "string"}})
    cart = await r.post("/messages", {
        "name": "Cart", "app_id": w.app_id, "category": "commercial",
        "title": "Your cart in {{City}}", "body": "Come back",
        "placeholders": {"City": {"source": "trigger", "field": "city",
                                  "default": "town"}}})
    bye = await r.post("/messages", message(w.app_id, "Bye"))
    journey = await r.post("/journeys", {
        "name": "Cart", "app_id": w.app_id,
        "entry": {"type": "trigger", "trigger": "cart_abandoned", "when": "cart_total gt 50"},
        "steps": [
            {"id": "remind", "type": "push", "message_id": cart["id"]},
            {"id": "pause", "type": "wait", "duration": "PT1M"},
            {"id": "route", "type": "branch", "branches": [
                {"when": f"in_segment('{vip['id']}') and city eq 'Oslo'", "next": "vip"},
                {"when": f"has_device('{w.app_id}')", "next": "devices"}],
             "otherwise": "end"},
            {"id": "devices", "type": "push", "message_id": bye["id"], "next": "end"},
            {"id": "vip", "type": "push", "message_id": bye["id"]}],
        "reentry": "never"})
    await r.post(f"/journeys/{journey['id']}/start", {}, 200)
    for person, total, city in ((p[0], 20, "Paris"), (p[1], 72.5, "Oslo"),
                                (p[2], 99, "Rome")):
        await r.post("/triggers/cart_abandoned/fire",
                     {"user_id": person, "data": {"cart_total": total, "city": city}}, 202)
    await r.settle()
    titles = _titles(r, await _steps_of_sends(r.c))
    assert titles == {(tokens[p[1]], "remind"): ["Your cart in Oslo"],
                      (tokens[p[2]], "remind"): ["Your cart in Rome"]}  # p0: 20 is not > 50
    r.clock.advance(61)
    await r.settle()
    titles = _titles(r, await _steps_of_sends(r.c))
    assert titles[(tokens[p[1]], "vip")] == ["Bye, there"]  # VIP in Oslo (the fire's city)
    assert (tokens[p[2]], "vip") not in titles
    assert titles[(tokens[p[2]], "devices")] == ["Bye, there"]  # has a device of the app
    assert (tokens[p[1]], "devices") not in titles
    report = await r.client.get(f"/v1/orgs/{w.org_id}/journeys/{journey['id']}/report",
                                headers=r.admin)
    steps = {s["id"]: s for s in report.json()["steps"]}
    assert steps["remind"]["inflow"] == 2 and steps["vip"]["inflow"] == 1


async def test_person_created_enters_a_journey(live: Live) -> None:
    r, w = live, live.w
    await r.settle()  # the world's people were created (and published) before the journey
    hello = await r.post("/messages", message(w.app_id, "Hello"))
    journey = await r.post("/journeys", {
        "name": "New people", "app_id": w.app_id,
        "entry": {"type": "trigger", "trigger": "person.created"},
        "steps": [{"id": "hi", "type": "push", "message_id": hello["id"]}]})
    await r.post(f"/journeys/{journey['id']}/start", {}, 200)
    person = await r.post("/people", {"email": "new@contoso.com", "kind": "contact",
                                      "first_name": "Nia"})
    await r.settle()
    report = await r.client.get(f"/v1/orgs/{w.org_id}/journeys/{journey['id']}/report",
                                headers=r.admin)
    assert report.json()["steps"][0]["inflow"] == 1
    async with r.c.db.read() as conn:
        send_ids = (await conn.execute(select(t.sends.c.id).where(
            t.sends.c.journey_id == journey["id"]))).scalars().all()
    assert len(send_ids) == 1
    assert (await r.c.sends.get(w.org_id, str(send_ids[0]))).user_ids == [person["id"]]


async def test_push_sent_and_not_sent_enter_journeys_once(live: Live) -> None:
    """Interaction entries on a push's outcome: a send of a message to two people, one with
    a device (sent: the first journey) and one without (not sent: the second); the outcome
    events published again enter nobody again."""
    r, w = live, live.w
    await r.settle()
    promo = await r.post("/messages", message(w.app_id, "Promo"))
    follow = await r.post("/messages", message(w.app_id, "Follow"))
    ids = {}
    for outcome in ("sent", "not_sent"):
        journey = await r.post("/journeys", {
            "name": f"After {outcome}", "app_id": w.app_id,
            "entry": {"type": "interaction", "interaction": outcome,
                      "message_id": promo["id"]},
            "steps": [{"id": "again", "type": "push", "message_id": follow["id"]}]})
        await r.post(f"/journeys/{journey['id']}/start", {}, 200)
        ids[outcome] = journey["id"]
    reached, unreachable = w.person_ids[:2]
    await r.register(reached, FcmDeviceToken="fcm-reached")
    await r.settle()
    await r.post("/sends", {"message_id": promo["id"], "user_ids": [reached, unreachable]},
                 202)
    await r.settle()

    async def entered() -> dict[str, list[str]]:
        async with r.c.db.read() as conn:
            rows = (await conn.execute(select(
                t.journey_instances.c.journey_id, t.journey_instances.c.person_id))).all()
        out: dict[str, list[str]] = {k: [] for k in ids}
        for outcome, jid in ids.items():
            out[outcome] = sorted(str(p) for j, p in rows if str(j) == jid)
        return out

    assert await entered() == {"sent": [reached], "not_sent": [unreachable]}
    async with r.c.db.read() as conn:
        send_id = str((await conn.execute(select(t.sends.c.id).where(
            t.sends.c.message_id == promo["id"]))).scalar_one())
    for outcome, person in (("sent", reached), ("not_sent", unreachable)):
        await r.c.events.dispatch_push_outcomes(OutcomePublication(send_id, outcome, [person]))
    await r.settle()
    assert await entered() == {"sent": [reached], "not_sent": [unreachable]}
    follows = [s for s in r.fake.sent if not s.dry_run
               and (s.notification.title or "").startswith("Follow")]
    assert [s.device.token for s in follows] == ["fcm-reached"]  # the other has no device


async def test_a_push_job_run_again_sends_nothing_twice(live: Live) -> None:
    """A worker that dies after the send was queued: the job's orders, run again, find the
    first send (the idempotency key is their digest); one send per group, never per person."""
    from clarion.services.journeys import PushOrder

    r, w = live, live.w
    hello = await r.post("/messages", message(w.app_id, "Hello"))
    orders = [PushOrder(w.org_id, w.app_id, "j-1", 1, "hello", person, 1, hello["id"], None,
                        f"jp:j-1:1:{person}:1:hello:1") for person in w.person_ids]
    push = r.c.journey_runtime._push  # the wired JourneyPush
    await push.send(orders)
    await push.send(orders)
    await push.send(list(reversed(orders)))
    async with r.c.db.read() as conn:
        sends = (await conn.execute(select(t.sends.c.id, t.sends.c.journey_step_id).where(
            t.sends.c.journey_id == "j-1"))).all()
    assert len(sends) == 1 and sends[0].journey_step_id == "hello"


async def test_people_deleted_since_they_entered_do_not_hold_back_the_others(
        live: Live) -> None:
    from clarion.services.journeys import PushOrder

    r, w = live, live.w
    hello = await r.post("/messages", message(w.app_id, "Hello"))
    orders = [PushOrder(w.org_id, w.app_id, "j-2", 1, "hello", person, 1, hello["id"], None,
                        f"jp:j-2:1:{person}:1:hello:1") for person in w.person_ids]
    await r.c.people.delete(w.org_id, w.person_ids[3])
    await r.c.journey_runtime._push.send(orders)
    async with r.c.db.read() as conn:
        sends = (await conn.execute(select(t.sends.c.id).where(
            t.sends.c.journey_id == "j-2"))).scalars().all()
    assert len(sends) == 1
    got = await r.c.sends.get(w.org_id, str(sends[0]))
    assert got.user_ids == [p for p in w.person_ids if p != w.person_ids[3]]


async def test_two_workers_on_postgresql_share_the_example_without_duplicates(
        pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small entry pages and push jobs, two workers claiming at once: every device still gets
    exactly one push per step."""
    from clarion.services import journey_jobs, journey_runtime
    from clarion.worker.loop import Worker
    from clarion.worker.tasks import build_handlers

    monkeypatch.setattr(journey_runtime, "ENTRY_PAGE", 7)
    monkeypatch.setattr(journey_jobs, "PUSH_BATCH", 3)
    async with live_rig(pg_url, tmp_path, people=40) as r:
        c, clock, fake, w = r.c, r.clock, r.fake, r.w
        tokens = {}
        for person in w.person_ids:
            tokens[person] = apns_token()
            await r.register(person, ApnsDeviceToken=tokens[person])
            await c.people.update(w.org_id, person, {"attributes": {"tier": "gold"}})
        await r.settle()
        journey = await _the_example(r, "tier eq 'gold'")
        await r.post(f"/journeys/{journey['id']}/start", {}, 200)

        async def both() -> None:
            workers = [Worker(c.queue, build_handlers(c), concurrency=4, batch_size=5,
                              poll_seconds=0.05, worker_id=f"w{i}") for i in (1, 2)]
            await asyncio.gather(*(wk.run_until_idle() for wk in workers))

        for _ in range(3):
            await both()
            clock.advance(0.25)
        clock.advance(8 + GRACE_S)  # the deadline, and the grace for late opens
        for _ in range(3):
            await both()
            clock.advance(0.25)
        step_of = await _steps_of_sends(c)
        got = Counter((s.device.token, step_of[s.notification.tracking_id or ""])
                      for s in fake.sent)
        assert got == Counter({(tok, step): 1 for tok in tokens.values()
                               for step in ("hello", "nudge")})


async def test_a_fire_from_before_the_start_enters_nobody(live: Live) -> None:
    """The bus delivers a fire about a second after it: one that happened before the
    journey started is not the journey's, even if it arrives after."""
    r, w = live, live.w
    await r.settle()
    await r.post("/triggers", {"name": "signed_up", "attributes": {}})
    hello = await r.post("/messages", message(w.app_id, "Hello"))
    journey = await r.post("/journeys", {
        "name": "Signed up", "app_id": w.app_id,
        "entry": {"type": "trigger", "trigger": "signed_up"},
        "steps": [{"id": "hi", "type": "push", "message_id": hello["id"]}]})
    await r.post("/triggers/signed_up/fire", {"user_id": w.person_ids[0], "data": {}}, 202)
    r.clock.advance(0.1)
    await r.post(f"/journeys/{journey['id']}/start", {}, 200)
    await r.post("/triggers/signed_up/fire", {"user_id": w.person_ids[1], "data": {}}, 202)
    await r.settle()
    async with r.c.db.read() as conn:
        entered = (await conn.execute(select(t.journey_instances.c.person_id).where(
            t.journey_instances.c.journey_id == journey["id"]))).scalars().all()
    assert [str(p) for p in entered] == [w.person_ids[1]]


async def test_a_fire_published_twice_enters_once_with_reentry_always(live: Live) -> None:
    """The trigger publication re-run (as after a crash between the subscriber's commit and
    the job's completion): the person entered once for that fire; a second fire enters
    again (re-entry ``always``)."""
    r, w = live, live.w
    await r.settle()
    await r.post("/triggers", {"name": "browsed", "attributes": {}})
    hello = await r.post("/messages", message(w.app_id, "Hello"))
    journey = await r.post("/journeys", {
        "name": "Browsed", "app_id": w.app_id, "reentry": "always",
        "entry": {"type": "trigger", "trigger": "browsed"},
        "steps": [{"id": "hi", "type": "push", "message_id": hello["id"]}]})
    await r.post(f"/journeys/{journey['id']}/start", {}, 200)
    r.clock.advance(0.1)
    await r.post("/triggers/browsed/fire", {"user_id": w.person_ids[0], "data": {}}, 202)
    await r.settle()
    async with r.c.db.read() as conn:
        fires = [str(i) for i in (await conn.execute(select(t.trigger_firings.c.id))
                                  ).scalars().all()]
    assert len(fires) == 1
    await r.c.events.dispatch_triggers(TriggerPublication(fires))  # delivered again
    await r.settle()

    async def entries() -> list[int]:
        async with r.c.db.read() as conn:
            return sorted((await conn.execute(select(t.journey_instances.c.entry_no).where(
                t.journey_instances.c.journey_id == journey["id"]))).scalars().all())

    assert await entries() == [1]
    await r.post("/triggers/browsed/fire", {"user_id": w.person_ids[0], "data": {}}, 202)
    await r.settle()
    assert await entries() == [1, 2]


@pytest.mark.parametrize("wait_first", [False, True])
async def test_a_branch_reads_people_read_per_page_or_per_timer_batch(
        live: Live, wait_first: bool) -> None:
    """A segment page's people are read together (``PagePeople``), and so are a timer
    batch's (``FilterFacts.prefetched``): a condition evaluated as they enter, or after a
    wait, sees their fields and attributes as stored."""
    r, w = live, live.w
    p = w.person_ids
    tokens = {p[i]: apns_token() for i in range(4)}
    for i, (person, token) in enumerate(tokens.items()):
        await r.register(person, ApnsDeviceToken=token)
        await r.c.people.update(w.org_id, person, {
            "first_name": "Gil" if i == 3 else f"P{i}",
            "attributes": {"tier": "gold" if i in (0, 2) else "silver", "member": True}})
    await r.settle()
    segment = await r.post("/segments", {"name": "In", "filter": "member eq true"})
    gold = await r.post("/messages", message(w.app_id, "Gold"))
    journey = await r.post("/journeys", {
        "name": "Gold first", "app_id": w.app_id,
        "entry": {"type": "segment", "segment_id": segment["id"]},
        "steps": [
            *([{"id": "pause", "type": "wait", "duration": "PT1M"}] if wait_first else []),
            {"id": "route", "type": "branch", "branches": [
                {"when": "tier eq 'gold' or first_name eq 'Gil'", "next": "gold"}],
             "otherwise": "end"},
            {"id": "gold", "type": "push", "message_id": gold["id"]}]})
    await r.post(f"/journeys/{journey['id']}/start", {}, 200)
    await r.settle()
    if wait_first:
        assert _titles(r, await _steps_of_sends(r.c)) == {}
        r.clock.advance(61)
        await r.settle()
    titles = _titles(r, await _steps_of_sends(r.c))
    assert titles == {(tokens[p[0]], "gold"): ["Gold, P0"], (tokens[p[2]], "gold"): ["Gold, P2"],
                      (tokens[p[3]], "gold"): ["Gold, Gil"]}

