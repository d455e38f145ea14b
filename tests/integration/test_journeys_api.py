"""Journeys over HTTP on SQLite and PostgreSQL: create (201 with the stored document), validate,
versions, the life cycle's 409s, the per-step report (JSON and CSV)."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from clarion.bootstrap import Container
from clarion.domain.journeys.engine import (
    LATE_INTERACTION_GRACE,
    Entered,
    Instance,
    Interaction,
    TimerFired,
    step,
)
from clarion.domain.journeys.validation import parse
from clarion.store import journeys as store
from tests.factories import World, world
from tests.unit.test_journey_document import EXAMPLE
from tests.unit.test_journey_engine import FakeFacts

pytestmark = pytest.mark.integration


def example(w: World) -> dict[str, Any]:
    doc = copy.deepcopy(EXAMPLE)
    doc["app_id"] = w.app_id
    return doc


def auth(w: World) -> dict[str, str]:
    return {"authorization": f"Bearer {w.admin_token}"}


async def test_create_get_list_and_validate(container: Container,
                                            client: httpx.AsyncClient) -> None:
    w = await world(container)
    base = f"/v1/orgs/{w.org_id}/journeys"
    r = await client.post(base, json=example(w), headers=auth(w))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["document"] == example(w)
    assert (body["version"], body["state"], body["live_version"]) == (1, "draft", None)
    assert (await client.get(f"{base}/{body['id']}", headers=auth(w))).json() == body
    assert [j["id"] for j in (await client.get(base, headers=auth(w))).json()] == [body["id"]]

    ok = await client.post(f"{base}/validate", json=example(w), headers=auth(w))
    assert ok.json() == {"valid": True, "errors": []}

    bad = example(w)
    bad["app_id"] = str(uuid.uuid4())
    bad["steps"][1]["within"] = "P1M"
    bad["steps"][3]["branches"][0]["next"] = "nowhere"
    found = (await client.post(f"{base}/validate", json=bad, headers=auth(w))).json()
    assert found["valid"] is False
    assert {(e.get("step"), e["field"]) for e in found["errors"]} == {
        ("opened", "within"), (None, "app_id")}

    r = await client.post(base, json=bad, headers=auth(w))
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "journey_invalid"
    assert {"step": "opened", "field": "within"}.items() <= error["errors"][0].items()
    assert error["problems"][0].startswith("step 'opened', within: ")
    assert len((await client.get(base, headers=auth(w))).json()) == 1  # nothing stored

    unknown_app = example(w)
    unknown_app["app_id"] = str(uuid.uuid4())
    r = await client.post(base, json=unknown_app, headers=auth(w))
    assert r.status_code == 404
    assert r.json()["error"]["field"] == "app_id"

    other = await world(container)
    r = await client.get(f"{base}/{body['id']}", headers=auth(other))
    assert r.status_code == 404
    r = await client.get(f"/v1/orgs/{other.org_id}/journeys/{body['id']}", headers=auth(other))
    assert r.status_code == 404


async def test_life_cycle_and_versions(container: Container, client: httpx.AsyncClient) -> None:
    w = await world(container)
    base = f"/v1/orgs/{w.org_id}/journeys"
    jid = (await client.post(base, json=example(w), headers=auth(w))).json()["id"]

    async def move(action: str) -> httpx.Response:
        return await client.post(f"{base}/{jid}/{action}", headers=auth(w))

    for action in ("pause", "resume", "stop"):
        r = await move(action)
        assert r.status_code == 409, action
        assert "draft" in r.json()["error"]["fix"]

    edited = example(w)
    edited["name"] = "Welcome series (draft edit)"
    r = await client.put(f"{base}/{jid}", json=edited, headers=auth(w))
    assert (r.json()["version"], r.json()["name"]) == (1, "Welcome series (draft edit)")

    r = await move("start")
    assert (r.json()["state"], r.json()["live_version"]) == ("live", 1)
    assert (await move("start")).status_code == 409
    assert (await move("resume")).status_code == 409

    edited["name"] = "Welcome series v2"
    r = await client.put(f"{base}/{jid}", json=edited, headers=auth(w))
    assert (r.json()["version"], r.json()["live_version"]) == (2, 2)
    assert r.json()["document"]["name"] == "Welcome series v2"

    assert (await move("pause")).json()["state"] == "paused"
    assert (await move("pause")).status_code == 409
    r = await move("start")
    assert r.status_code == 409
    assert "resume" in r.json()["error"]["message"]
    assert (await move("resume")).json()["state"] == "live"
    assert (await move("stop")).json()["state"] == "stopped"
    for action in ("start", "pause", "resume", "stop"):
        assert (await move(action)).status_code == 409
    r = await client.put(f"{base}/{jid}", json=edited, headers=auth(w))
    assert r.status_code == 409


async def _run_people(c: Container, w: World, journey_id: str) -> None:
    """Four people through the example with the engine, stored as the runtime stores them:
    a gold opener, a silver opener, one who never opens, one still waiting."""
    journey = parse(example(w))
    t0 = datetime(2027, 3, 1, tzinfo=UTC)
    gold = FakeFacts(true={"tier eq 'gold'"})
    script = [("gold", gold, Interaction("hello", "opened")),
              ("silver", FakeFacts(), Interaction("hello", "clicked")),
              ("silent", gold, TimerFired("opened")),
              ("waiting", gold, None)]
    async with c.db.write() as conn:
        for name, facts, event in script:
            inst, _ = step(journey, Instance(journey_id, 1, name), Entered(), t0, facts)
            await store.insert_instance(conn, instance_id=str(uuid.uuid4()), org_id=w.org_id,
                                        instance=inst, now=t0)
            assert not await store.insert_instance(conn, instance_id=str(uuid.uuid4()),
                                                   org_id=w.org_id, instance=inst, now=t0)
            if event is not None:
                # opens within the wait; the timer at its deadline (and the grace after it)
                when = t0 + (timedelta(seconds=3) if isinstance(event, Interaction)
                             else timedelta(seconds=8) + LATE_INTERACTION_GRACE)
                inst, _ = step(journey, inst, event, when, facts)
                await store.save_instance(conn, inst, t0)
        back = await store.get_instance(conn, journey_id, 1, "gold", 1)
        assert back is not None
        assert back.path == ("hello", "opened", "tier", "perks")


async def test_report_json_and_csv(container: Container, client: httpx.AsyncClient) -> None:
    w = await world(container)
    base = f"/v1/orgs/{w.org_id}/journeys"
    jid = (await client.post(base, json=example(w), headers=auth(w))).json()["id"]
    await client.post(f"{base}/{jid}/start", headers=auth(w))
    await _run_people(container, w, jid)

    report = (await client.get(f"{base}/{jid}/report", headers=auth(w))).json()
    steps = {s["id"]: s for s in report["steps"]}
    assert list(steps) == ["hello", "opened", "nudge", "tier", "perks"]
    assert (report["people"], report["inside"]) == (4, 1)
    channel = steps["hello"].pop("channel")
    assert steps["hello"] == {"id": "hello", "type": "push", "inflow": 4, "processing": 0,
                              "processed": 4, "exit": 0, "exit_reasons": {}, "held": 0}
    assert report["held"] == 0
    # The push steps' channel figures come from the report roll-ups (no sends here: zeros).
    assert channel["sent"] == {"people": 0, "devices": 0}
    assert "open_rate" in channel["rates"]
    assert "channel" not in steps["opened"]
    assert (steps["opened"]["inflow"], steps["opened"]["processing"]) == (4, 1)
    assert steps["tier"]["inflow"] == 2
    assert steps["perks"]["processed"] == steps["nudge"]["processed"] == 1
    for s in report["steps"]:
        assert s["inflow"] == s["processing"] + s["processed"] + s["exit"]

    r = await client.get(f"{base}/{jid}/report", params={"format": "csv"}, headers=auth(w))
    assert r.headers["content-type"].startswith("text/csv")
    lines = r.text.splitlines()
    assert lines[0] == ("step,type,inflow,processing,processed,exit,exit_reasons,"
                        "sent_people,not_sent_people,blocked_people,held_people,"
                        "delivered_people,opened_people,clicked_people,ab_a_rate,ab_b_rate,"
                        "ab_winner")
    assert lines[1] == "hello,push,4,0,4,0,,0,0,0,0,0,0,0,,,"  # the channel: no sends here

    await client.post(f"{base}/{jid}/stop", headers=auth(w))
    report = (await client.get(f"{base}/{jid}/report", headers=auth(w))).json()
    opened = report["steps"][1]
    assert (opened["processing"], opened["exit"], opened["exit_reasons"]) == (
        0, 1, {"journey_stopped": 1})
    assert report["inside"] == 0


async def test_openapi_documents_the_journey_routes(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in ("/v1/orgs/{org_id}/journeys", "/v1/orgs/{org_id}/journeys/validate",
                 "/v1/orgs/{org_id}/journeys/{journey_id}/start",
                 "/v1/orgs/{org_id}/journeys/{journey_id}/report"):
        assert path in paths


async def test_push_steps_carry_their_channel_figures(container: Container,
                                                      client: httpx.AsyncClient) -> None:
    """The figures the send path rolls up per journey step (journey and step keys on the
    deliveries) are the push step's channel figures in the journey report."""
    from clarion.store import counters

    w = await world(container)
    base = f"/v1/orgs/{w.org_id}/journeys"
    jid = (await client.post(base, json=example(w), headers=auth(w))).json()["id"]
    now = container.clock.now()
    keys = {"org_id": w.org_id, "app_id": w.app_id, "send_id": str(uuid.uuid4()), "at": now,
            "journey_id": jid, "journey_step_id": "nudge"}
    async with container.db.write() as conn:
        await counters.increment(conn, [
            counters.Count(**keys, platform="", metric="inflow", value=3),
            counters.Count(**keys, platform="ios", metric="sent_people", value=2),
            counters.Count(**keys, platform="ios", metric="sent", value=2)])
    steps = {s["id"]: s for s in (await client.get(f"{base}/{jid}/report",
                                                   headers=auth(w))).json()["steps"]}
    assert steps["nudge"]["channel"]["inflow"] == 3
    assert steps["nudge"]["channel"]["sent"] == {"people": 2, "devices": 2}
    assert steps["hello"]["channel"]["inflow"] == 0
