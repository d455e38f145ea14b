"""Push orders and timers become batched jobs whose keys depend on their contents only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clarion.domain.journeys.engine import Await, Done, Instance, Schedule, SendPush
from clarion.services.journey_jobs import PUSH_BATCH, as_jobs, due_ms, queued
from clarion.services.journey_tasks import JOURNEY_PUSH, JOURNEY_TIMER
from clarion.store.jobs import Job

pytestmark = pytest.mark.unit

T = datetime(2027, 3, 1, 9, tzinfo=UTC)


def moved(person: str) -> Instance:
    return Instance("j", 1, person, 1, "waiting", "opened", path=("hello", "opened"))


def test_orders_and_timers_are_batched_with_content_keys() -> None:
    items = []
    for n in range(PUSH_BATCH + 1):
        items += queued("o", "a", moved(f"p{n}"), [
            SendPush("hello", "m"), Await("interaction", "hello", T), Schedule(T, "opened"),
            Done("completed")])
    jobs = as_jobs(items)
    pushes = [j for j in jobs if j.kind == JOURNEY_PUSH.name]
    timers = [j for j in jobs if j.kind == JOURNEY_TIMER.name]
    assert [len(j.payload["orders"]) for j in pushes] == [PUSH_BATCH, 1]
    assert [len(j.payload["keys"]) for j in timers] == [PUSH_BATCH, 1]
    assert {j.run_at_ms for j in timers} == {due_ms(T)}
    first = JOURNEY_PUSH.args(Job(1, pushes[0].kind, pushes[0].payload, 1, 3))[0]
    assert first.key == "jp:j:1:p0:1:hello:1"
    assert [j.unique_key for j in as_jobs(items)] == [j.unique_key for j in jobs]
    assert len({j.unique_key for j in jobs}) == len(jobs)


def test_due_times_round_up_to_the_millisecond() -> None:
    assert due_ms(T) == int(T.timestamp() * 1000)
    assert due_ms(T + timedelta(microseconds=1)) == int(T.timestamp() * 1000) + 1
