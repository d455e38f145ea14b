"""The journey report sums its instances in SQL (``store.journeys.figures``): the figures must
be exactly those of the domain's tally fed one instance at a time, on SQLite and PostgreSQL,
for any mix of paths (revisits included), states, exit reasons, variants and goals."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import pytest

from clarion.bootstrap import Container
from clarion.domain.journeys.engine import COMPLETED, Instance
from clarion.domain.journeys.tally import Tally
from clarion.store import journeys as store
from tests.factories import world
from tests.integration.test_journeys_api import example

pytestmark = pytest.mark.integration

STEPS = ["hello", "opened", "nudge", "tier", "perks", "gone"]  # "gone": a removed step
REASONS = [COMPLETED, COMPLETED, "journey_stopped", "exit_trigger:purchased", "loop_guard"]


def _instance(rng: random.Random, journey_id: str, n: int) -> Instance:
    path = tuple(rng.choice(STEPS) for _ in range(rng.randint(0, 6)))
    done = rng.random() < 0.6
    return Instance(
        journey_id, rng.choice([1, 2]), f"00000000-0000-4000-8000-{n:012d}",
        status="done" if done else rng.choice(["active", "waiting"]),
        step_id=path[-1] if path else None, path=path,
        done_reason=rng.choice(REASONS) if done else None,
        variants=tuple((s, rng.choice("ab")) for s in ("nudge", "perks") if rng.random() < .3),
        goal_met=rng.random() < 0.2)


async def test_the_sql_figures_are_the_tally_of_every_instance(container: Container) -> None:
    c = container
    w = await world(c)
    jid = (await c.journeys.create(w.org_id, example(w))).id
    rng = random.Random(20261207)
    instances = [_instance(rng, jid, n) for n in range(400)]
    now = datetime.now(UTC)
    async with c.db.write() as conn:
        for inst in instances:
            await store.insert_instance(conn, instance_id=str(uuid.uuid4()), org_id=w.org_id,
                                        instance=inst, now=now)
        figures = await store.figures(conn, jid)
    one_by_one, summed = Tally([(s, "push") for s in STEPS]), Tally([(s, "push") for s in STEPS])
    for inst in instances:
        one_by_one.add(inst.path, inst.status, inst.done_reason, inst.variants, inst.goal_met)
    summed.add_figures(figures)
    assert [s.as_dict() for s in summed.steps()] == [s.as_dict() for s in one_by_one.steps()]
    assert (summed.people, summed.inside, summed.goal_met) == (
        one_by_one.people, one_by_one.inside, one_by_one.goal_met) == (
        400, sum(not i.done for i in instances), sum(i.goal_met for i in instances))
    assert sum(s.inflow for s in summed.steps()) == sum(len(i.path) for i in instances)
