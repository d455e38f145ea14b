"""Compliance in journeys (issue 15): a journey across a quiet window holds its pushes and the
report shows how many; a step's "send before" deadline skips a push held past it; a journey
may be excluded from the frequency cap; a journey's or a message's own quiet-time profile
takes the org's place. Frozen clock from Monday 2027-03-01 09:00 UTC; people in UTC."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from clarion.domain.journeys.engine import LATE_INTERACTION_GRACE
from clarion.store import tables as t
from tests.integration.journey_rig import Live, live_rig, message
from tests.query_plans import full_scans, statements

pytestmark = pytest.mark.integration


@pytest.fixture
async def live(db_url: str, tmp_path: Path) -> AsyncIterator[Live]:
    async with live_rig(db_url, tmp_path) as rig:
        yield rig

# Quiet for commercial pushes every day from 08:30 to 10:00 (UTC here): 09:00 is inside.
MORNING = {"name": "Mornings", "general": {"commercial": {
    "windows": [{"start": "08:30", "end": "10:00"}]}}}


async def _journey(r: Live, message_id: str, **extra: Any) -> str:
    w = r.w
    segment = await r.post("/segments", {"name": f"Some {uuid.uuid4()}",
                                         "filter": "email ne null"})
    step: dict[str, Any] = {"id": "hello", "type": "push", "message_id": message_id}
    step.update(extra.pop("step", {}))
    journey = await r.post("/journeys", {
        "name": "Welcome", "app_id": w.app_id,
        "entry": {"type": "segment", "segment_id": segment["id"], "schedule": {"kind": "once"}},
        "steps": [step], **extra})
    await r.post(f"/journeys/{journey['id']}/start", {}, 200)
    return str(journey["id"])


async def _people_with_devices(r: Live, n: int) -> list[str]:
    people = r.w.person_ids[:n]
    for i, person in enumerate(people):
        await r.register(person, FcmDeviceToken=f"fcm-c-{i}")
    await r.settle()
    return people


def _sent(r: Live, title: str) -> list[str]:
    return [s.device.token for s in r.fake.sent if not s.dry_run
            and (s.notification.title or "").startswith(title)]


async def _report(r: Live, journey_id: str) -> dict[str, Any]:
    got = await r.client.get(f"/v1/orgs/{r.w.org_id}/journeys/{journey_id}/report",
                             headers=r.admin)
    assert got.status_code == 200, got.text
    out: dict[str, Any] = got.json()
    return out


async def test_a_journey_across_a_quiet_window_holds_then_sends(live: Live) -> None:
    r = live
    await r.put("/quiet-times", MORNING)
    people = await _people_with_devices(r, 2)
    hello = await r.post("/messages", message(r.w.app_id, "Hello"))
    jid = await _journey(r, hello["id"])
    await r.settle()
    assert _sent(r, "Hello") == []  # 09:00: quiet
    report = await _report(r, jid)
    assert (report["held"], report["steps"][0]["held"]) == (2, 2)
    assert report["steps"][0]["channel"]["held"]["total"] == 2
    r.clock.advance(3600 - 10)  # 09:59:5x (settle moves the clock 0.75 s): still quiet
    await r.settle()
    assert _sent(r, "Hello") == []
    r.clock.advance(10)  # past 10:00
    await r.settle()
    assert sorted(_sent(r, "Hello")) == ["fcm-c-0", "fcm-c-1"]
    assert (await _report(r, jid))["held"] == 0
    assert len(people) == 2


async def test_a_step_send_before_deadline_skips_a_push_held_past_it(live: Live) -> None:
    r = live
    await r.put("/quiet-times", MORNING)
    await _people_with_devices(r, 2)
    hello = await r.post("/messages", message(r.w.app_id, "Hello"))
    jid = await _journey(r, hello["id"], step={"send_before": "PT30M"})  # quiet until 10:00
    await r.settle()
    r.clock.advance(2 * 3600)
    await r.settle()
    assert _sent(r, "Hello") == []
    channel = (await _report(r, jid))["steps"][0]["channel"]
    assert channel["blocked"]["total"] == channel["blocked"]["by_reason"]["expired"] == 2, \
        channel


async def test_a_journey_excluded_from_the_cap_is_not_capped(live: Live) -> None:
    r = live
    await r.put("/frequency-caps", {"push": {"per_24h": 1}})
    people = await _people_with_devices(r, 2)
    first = await r.post("/messages", message(r.w.app_id, "First"))
    await r.post("/sends", {"message_id": first["id"], "user_ids": people}, 202)
    await r.settle()
    assert len(_sent(r, "First")) == 2  # each person's one push of the day
    capped = await r.post("/messages", message(r.w.app_id, "Capped"))
    free = await r.post("/messages", message(r.w.app_id, "Free"))
    await _journey(r, capped["id"])
    await _journey(r, free["id"], compliance={"frequency_cap": "exclude"})
    await r.settle()
    assert _sent(r, "Capped") == []
    assert sorted(_sent(r, "Free")) == ["fcm-c-0", "fcm-c-1"]


async def test_a_journey_or_a_message_profile_takes_the_orgs_place(live: Live) -> None:
    """The org has no quiet times; a journey's profile holds its pushes, a message's profile
    holds that message's, and the journey's comes first (here: none quiet at 09:00)."""
    r = live
    await _people_with_devices(r, 1)
    plain = await r.post("/messages", message(r.w.app_id, "Plain"))
    quiet_message = await r.post("/messages", {**message(r.w.app_id, "Hushed"),
                                               "quiet_times": MORNING})
    evening = {"name": "Evenings", "general": {"commercial": {
        "windows": [{"start": "20:00", "end": "07:00"}]}}}
    await _journey(r, plain["id"], compliance={"quiet_times": MORNING})
    await _journey(r, quiet_message["id"])
    await _journey(r, quiet_message["id"], compliance={"quiet_times": evening})
    await r.settle()
    titles = Counter((s.notification.title or "").split(",")[0] for s in r.fake.sent
                     if not s.dry_run)
    assert titles == Counter({"Hushed": 1})  # the third journey: its evening profile
    r.clock.advance(3600 + LATE_INTERACTION_GRACE.total_seconds())
    await r.settle()
    titles = Counter((s.notification.title or "").split(",")[0] for s in r.fake.sent
                     if not s.dry_run)
    assert titles == Counter({"Hushed": 2, "Plain": 1})


async def test_a_bad_journey_profile_or_deadline_is_a_400_naming_the_field(live: Live) -> None:
    r = live
    hello = await r.post("/messages", message(r.w.app_id, "Hello"))
    segment = await r.post("/segments", {"name": "All", "filter": "email ne null"})
    base = {"name": "X", "app_id": r.w.app_id,
            "entry": {"type": "segment", "segment_id": segment["id"]}}
    for extra, field in [
            ({"compliance": {"quiet_times": {"name": "N", "general": {"commercial": {
                "windows": [{"start": "25:00", "end": "07:00"}]}}}}},
             "compliance.quiet_times"),
            ({"compliance": {"frequency_cap": "sometimes"}}, "compliance.frequency_cap"),
            ({"steps": [{"id": "hello", "type": "push", "message_id": hello["id"],
                         "send_before": "soon"}]}, "send_before")]:
        doc = {"steps": [{"id": "hello", "type": "push", "message_id": hello["id"]}],
               **base, **extra}
        got = await r.client.post(f"/v1/orgs/{r.w.org_id}/journeys", json=doc,
                                  headers=r.admin)
        assert got.status_code == 400, got.text
        assert field in got.text, got.text


async def test_a_message_without_placeholders_is_rendered_once_and_held_like_any(
        live: Live) -> None:
    """A stored message that reads nothing of anyone is rendered when the send is made (no
    per-person rendering or row) and still goes through the quiet window as the journey's
    push; the report's reads search by key (the held count goes through the journey's sends
    by index, not through every send of the instance)."""
    r = live
    await r.put("/quiet-times", MORNING)
    await _people_with_devices(r, 2)
    sale = await r.post("/messages", {"name": "Sale", "app_id": r.w.app_id,
                                      "category": "commercial", "title": "Sale today",
                                      "body": "20% off"})
    jid = await _journey(r, sale["id"])
    await r.settle()
    assert _sent(r, "Sale") == []  # held: 09:00 is quiet
    with statements(r.c) as run:
        report = await _report(r, jid)
    assert report["held"] == 2
    assert await full_scans(r.c, run) == []
    r.clock.advance(3600)
    await r.settle()
    got = [s for s in r.fake.sent if not s.dry_run and s.notification.title == "Sale today"]
    assert sorted(s.device.token for s in got) == ["fcm-c-0", "fcm-c-1"]
    assert {s.notification.body for s in got} == {"20% off"}
    async with r.c.db.read() as conn:
        sends = (await conn.execute(select(t.sends.c.id, t.sends.c.message_id).where(
            t.sends.c.journey_id == jid))).all()
        rows = await conn.scalar(select(func.count()).select_from(t.send_messages).where(
            t.send_messages.c.send_id.in_([s.id for s in sends])))
    assert [s.message_id for s in sends] == [sale["id"]] and rows == 0
    assert (await _report(r, jid))["steps"][0]["channel"]["sent"]["people"] == 2
