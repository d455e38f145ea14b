"""What the runtime's facts say about a person, read from the database: fields and attributes
for conditions (with the trigger's data), the time zone, opens and clicks of the journey's
pushes since the entry, and A/B winners from the variants' figures."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from datetime import timedelta

import pytest

from clarion.bootstrap import Container
from clarion.domain.journeys.engine import Instance
from clarion.services.journey_facts import StoredFacts
from clarion.store import counters
from clarion.store import journeys as store
from clarion.store import tables as t
from tests.factories import world
from tests.unit.test_journey_document import EXAMPLE

pytestmark = pytest.mark.integration


def evaluate(condition: str, person: Mapping[str, object],
             trigger: Mapping[str, object] | None) -> bool:
    name, _, value = condition.split(" ", 2)
    return {**person, **(trigger or {})}.get(name) == value.strip("'")


async def test_facts_from_the_database(container: Container) -> None:
    c = container
    w = await world(c, people_count=0)
    person = await c.people.create(w.org_id, {"email": "ada@contoso.com", "kind": "contact",
                                              "time_zone": "Europe/Paris",
                                              "attributes": {"tier": "gold"}})
    doc = copy.deepcopy(EXAMPLE)
    doc["app_id"] = w.app_id
    past = (c.clock.now() - timedelta(days=1)).isoformat()
    doc["steps"][2] = {"id": "nudge", "type": "push", "next": "end",
                       "ab": {"a": "m-a", "b": "m-b", "share_a": 50, "ends_at": past}}
    journey = await c.journeys.create(w.org_id, doc)
    inst = Instance(journey.id, 1, person.id)
    now = c.clock.now()
    facts = StoredFacts(c.db, c.clock, evaluate, c.reports)

    before = await facts.facts(w.org_id, inst, {"city": "Lyon"})
    assert before.matches("tier eq 'gold'")
    assert before.matches("city eq 'Lyon'")
    assert not before.matches("tier eq 'silver'")
    assert before.time_zone() == "Europe/Paris"
    assert not before.interacted("hello", "opened")
    assert before.winner("nudge") == "a"  # ended, no figures: a tie goes to A

    async with c.db.write() as conn:
        await store.insert_instance(conn, instance_id=str(uuid.uuid4()), org_id=w.org_id,
                                    instance=inst, now=now - timedelta(seconds=1))
        await conn.execute(t.interactions.insert().values(
            org_id=w.org_id, app_id=w.app_id, send_id=str(uuid.uuid4()),
            delivery_id=str(uuid.uuid4()), person_id=person.id, device_id=str(uuid.uuid4()),
            platform="ios", kind="clicked", source="cij_events", first=True,
            journey_id=journey.id, journey_step_id="hello", message_id=None, occurred_at=now))
        keys = {"org_id": w.org_id, "app_id": w.app_id, "platform": "ios", "at": now}
        await counters.increment(conn, [
            counters.Count(**keys, send_id=str(uuid.uuid4()), message_id=m, metric=metric,
                           value=value)
            for m, metric, value in [("m-a", "sent_people", 100),
                                     ("m-a", "unique_opened_people", 10),
                                     ("m-b", "sent_people", 100),
                                     ("m-b", "unique_opened_people", 30)]])
    after = await facts.facts(w.org_id, inst, None)
    assert after.interacted("hello", "opened")  # a click opens it
    assert after.interacted("hello", "clicked")
    assert not after.interacted("perks", "opened")
    assert after.winner("nudge") == "a"  # cached for a minute
    fresh = StoredFacts(c.db, c.clock, evaluate, c.reports)
    assert (await fresh.facts(w.org_id, inst, None)).winner("nudge") == "b"

    # The journey report shows the test per variant, decided as the runtime decides it.
    report = (await c.journeys.report(w.org_id, journey.id)).as_dict()
    ab = next(s for s in report["steps"] if s["id"] == "nudge")["ab"]
    assert (ab["a"]["message_id"], ab["a"]["sent_people"], ab["a"]["opened_people"],
            ab["a"]["rate"]) == ("m-a", 100, 10, 0.1)
    assert (ab["b"]["message_id"], ab["b"]["sent_people"], ab["b"]["opened_people"],
            ab["b"]["rate"]) == ("m-b", 100, 30, 0.3)
    assert (ab["metric"], ab["winner"]) == ("opened", "b")
    assert ab["confidence"] > 0.99  # 10 % vs 30 % of 100 each
    assert ab["b"]["channel"]["sent"]["people"] == 100
