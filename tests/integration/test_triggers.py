"""Custom triggers through the API on SQLite and PostgreSQL: declarations, validated fires, the
Idempotency-Key, and the events published on the bus (``trigger.<name>``, ``person.created``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from clarion.bootstrap import Container
from clarion.domain.triggers import PersonCreatedEvent, TriggerEvent
from clarion.services import events
from clarion.store import tables as t
from tests.factories import drain

pytestmark = pytest.mark.integration

CART = {"name": "cart_abandoned", "attributes": {"cart_total": "number", "city": "string"}}


class Collect:
    def __init__(self, fail_times: int = 0) -> None:
        self.events: list[Any] = []
        self.fail_times = fail_times

    async def __call__(self, batch: Sequence[Any]) -> None:
        if self.fail_times:
            self.fail_times -= 1
            raise RuntimeError("subscriber down")
        self.events.extend(batch)


async def _setup(client: httpx.AsyncClient, container: Container, created: Collect | None = None
                 ) -> tuple[str, dict[str, str], str]:
    if created is not None:
        container.events.subscribe("person.created", created, name="created")
    org = await container.orgs.create("Contoso")
    auth = {"authorization": f"Bearer {org.admin_token}"}
    person = await client.post(f"/v1/orgs/{org.id}/people", headers=auth,
                               json={"first_name": "Ana", "attributes": {"tier": "gold"}})
    assert person.status_code == 201
    return org.id, auth, person.json()["id"]


async def publish(container: Container, kind: str) -> int:
    """Run the publication jobs of ``kind`` now (they are due a moment after the commit, and
    retries after a backoff)."""
    async with container.db.write() as conn:
        await conn.execute(t.jobs.update().where(t.jobs.c.kind == kind,
                                                 t.jobs.c.state == "queued").values(run_at=0))
    return await drain(container, kinds=[kind])


async def _count(container: Container, table: Any, *where: Any) -> int:
    async with container.db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table).where(*where))
                   or 0)


async def test_declare_list_show_delete(client: httpx.AsyncClient,
                                        container: Container) -> None:
    org, auth, _ = await _setup(client, container)
    base = f"/v1/orgs/{org}/triggers"
    created = await client.post(base, headers=auth, json=CART)
    assert created.status_code == 201, created.text
    doc = created.json()
    assert {k: doc[k] for k in ("name", "attributes")} == CART and doc["id"]
    assert (await client.post(base, headers=auth, json=CART)).status_code == 409
    assert (await client.get(f"{base}/cart_abandoned", headers=auth)).json() == doc
    assert [d["name"] for d in (await client.get(base, headers=auth)).json()["items"]] == [
        "cart_abandoned"]
    bad = await client.post(base, headers=auth, json={"name": "x", "attributes": {"a": "money"}})
    assert bad.status_code in (400, 422)
    reserved = await client.post(base, headers=auth, json={"name": "person.created"})
    assert reserved.status_code == 400 and "reserved" in reserved.json()["error"]["message"]
    assert (await client.delete(f"{base}/cart_abandoned", headers=auth)).status_code == 204
    assert (await client.get(f"{base}/cart_abandoned", headers=auth)).status_code == 404


async def test_fire_is_validated_stored_and_published_once(
        client: httpx.AsyncClient, container: Container) -> None:
    fires, created = Collect(), Collect()
    org, auth, person = await _setup(client, container, created)
    base = f"/v1/orgs/{org}/triggers"
    await client.post(base, headers=auth, json=CART)
    container.events.subscribe("trigger.cart_abandoned", fires, name="fires")
    key = {**auth, "Idempotency-Key": "cart-42"}
    body = {"user_id": person, "data": {"cart_total": 72.5, "city": "Lyon"}}

    first = await client.post(f"{base}/cart_abandoned/fire", headers=key, json=body)
    assert first.status_code == 202, first.text
    again = await client.post(f"{base}/cart_abandoned/fire", headers=key, json=body)
    assert again.status_code == 202 and again.json() == first.json()
    assert first.json()["user_id"] == person and first.json()["data"] == body["data"]
    assert await _count(container, t.trigger_firings) == 1
    assert await _count(container, t.jobs, t.jobs.c.kind == events.TRIGGER_EVENTS.name) == 1

    await publish(container, events.TRIGGER_EVENTS.name)
    await publish(container, events.PERSON_EVENTS.name)
    assert [type(e) for e in fires.events] == [TriggerEvent]
    event = fires.events[0]
    assert (event.id, event.topic, event.person_id, event.org_id, event.data) == (
        first.json()["id"], "trigger.cart_abandoned", person, org, body["data"])
    assert created.events == [PersonCreatedEvent(org, person)]


@pytest.mark.parametrize(("body", "status", "field", "words"), [
    ({"data": {"cart_total": "72"}}, 400, "data.cart_total", "must be a number"),
    ({"data": {"cart_total": True}}, 400, "data.cart_total", "must be a number"),
    ({"data": {"colour": "red"}}, 400, "data.colour", "no attribute 'colour'"),
    ({"user_id": "3f2504e0-4f89-11d3-9a0c-0305e82c3301"}, 404, "user_id", "does not exist"),
    ({"user_id": "nobody"}, 404, "user_id", "does not exist"),
])
async def test_bad_fires_are_refused_and_publish_nothing(
        client: httpx.AsyncClient, container: Container, body: dict[str, Any], status: int,
        field: str, words: str) -> None:
    org, auth, person = await _setup(client, container)
    base = f"/v1/orgs/{org}/triggers"
    await client.post(base, headers=auth, json=CART)
    answer = await client.post(f"{base}/cart_abandoned/fire", headers=auth,
                               json={"user_id": person, **body})
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["field"] == field and words in error["message"]
    assert await _count(container, t.trigger_firings) == 0
    assert await _count(container, t.jobs, t.jobs.c.kind == events.TRIGGER_EVENTS.name) == 0


async def test_an_undeclared_trigger_is_404_with_the_way_out(
        client: httpx.AsyncClient, container: Container) -> None:
    org, auth, person = await _setup(client, container)
    answer = await client.post(f"/v1/orgs/{org}/triggers/nope/fire", headers=auth,
                               json={"user_id": person})
    assert answer.status_code == 404
    assert "clarion triggers create" in answer.json()["error"]["fix"]


async def test_imports_publish_person_created_per_chunk(
        container: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The retry's backoff is drawn from [0, 1 s] on the first attempt: pinned at a minute, so
    # that it cannot fall due while the other two jobs run on a slow machine.
    monkeypatch.setattr(events, "backoff_seconds", lambda attempt: 60.0)
    org = await container.orgs.create("Contoso")
    container.events.unsubscribe("journeys.person_created")  # only this test's subscriber
    seen = Collect(fail_times=1)  # and a failing subscriber gets them again, alone
    container.events.subscribe("person.created", seen, name="seen")
    path = tmp_path / "people.csv"
    path.write_text("first_name\n" + "".join(f"p{i}\n" for i in range(25)))
    from clarion.services.importing import iter_rows

    summary = await container.importer.import_people(org.id, iter_rows(path), chunk_size=10)
    assert summary.imported == 25
    assert await _count(container, t.jobs, t.jobs.c.kind == events.PERSON_EVENTS.name) == 3
    await publish(container, events.PERSON_EVENTS.name)
    assert len(seen.events) == 15  # the first batch failed: its retry job is due later
    await publish(container, events.PERSON_EVENTS.name)
    ids = sorted(e.person_id for e in seen.events)
    async with container.db.read() as conn:
        people = sorted((await conn.execute(select(t.people.c.id).where(
            t.people.c.org_id == org.id))).scalars().all())
    assert ids == people


async def test_nothing_is_queued_for_person_created_while_nobody_listens(
        client: httpx.AsyncClient, container: Container) -> None:
    container.events.unsubscribe("journeys.person_created")  # bootstrap's (journeys) listens
    await _setup(client, container)
    assert await _count(container, t.jobs) == 0


def test_topics() -> None:
    assert events.known_topic("trigger.cart_abandoned")
    assert events.known_topic("trigger.*") and events.known_topic("person.created")
    assert not events.known_topic("trigger.") and not events.known_topic("person.deleted")
