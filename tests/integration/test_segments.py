"""Segments through the API and the service, on SQLite and PostgreSQL: documents, references and
cycles, size previews, static imports, and a 100,000-person segment read page by page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from clarion.bootstrap import Container
from clarion.store import tables as t

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, tzinfo=UTC)


async def _org(client: httpx.AsyncClient, container: Container) -> tuple[str, dict[str, str]]:
    created = await container.orgs.create("Contoso")
    return created.id, {"authorization": f"Bearer {created.admin_token}"}


def _pid(i: int) -> str:
    return f"{i:08d}-0000-4000-8000-000000000000"


async def _people(container: Container, org_id: str, rows: list[dict[str, Any]]) -> None:
    async with container.db.write() as conn:
        for start in range(0, len(rows), 5000):
            await conn.execute(insert(t.people), [
                {"org_id": org_id, "kind": "contact", "created_at": NOW, "updated_at": NOW,
                 **row} for row in rows[start:start + 5000]])


async def test_dynamic_segment_document_size_and_members(
        client: httpx.AsyncClient, container: Container) -> None:
    org, auth = await _org(client, container)
    base = f"/v1/orgs/{org}/segments"
    await _people(container, org, [
        {"id": _pid(i), "email": f"p{i}@example.com", "first_name": name,
         "attributes": {"tier": tier}}
        for i, (name, tier) in enumerate([("Ana", "gold"), ("Bo", "silver"), ("Cy", "bronze"),
                                          ("Di", "gold")])])
    answer = await client.post(base, headers=auth, json={
        "name": "Gold and silver", "filter": "tier eq 'gold' or tier eq 'silver'"})
    assert answer.status_code == 201, answer.text
    doc = answer.json()
    assert doc["name"] == "Gold and silver" and doc["kind"] == "dynamic"
    assert doc["filter"] == "tier eq 'gold' or tier eq 'silver'"
    sid = doc["id"]
    assert (await client.get(f"{base}/{sid}", headers=auth)).json() == doc
    size = (await client.get(f"{base}/{sid}/size", headers=auth)).json()
    assert size == {"count": 3, "sample": [_pid(0), _pid(1), _pid(3)]}
    page = (await client.get(f"{base}/{sid}/members?limit=2", headers=auth)).json()
    assert page == {"items": [_pid(0), _pid(1)], "next_cursor": _pid(1)}
    page = (await client.get(f"{base}/{sid}/members?limit=2&cursor={_pid(1)}",
                             headers=auth)).json()
    assert page == {"items": [_pid(3)], "next_cursor": None}
    assert await container.segments.contains(org, sid, [_pid(0), _pid(2), _pid(9)]) == {_pid(0)}

    # Another segment built on this one; the cycle back to it is refused at save.
    nested = (await client.post(base, headers=auth, json={
        "name": "Golden Ana", "filter": f"in_segment('{sid}') and first_name eq 'Ana'"})).json()
    assert (await container.segments.size(org, nested["id"])).count == 1
    cycle = await client.put(f"{base}/{sid}", headers=auth, json={
        "name": "loop", "filter": f"in_segment('{nested['id']}')"})
    assert cycle.status_code == 400 and "cycle" in cycle.json()["error"]["message"]
    assert (await client.delete(f"{base}/{sid}", headers=auth)).status_code == 409
    assert (await client.get(f"{base}/{sid}", headers=auth)).json()["filter"] == doc["filter"]

    changed = await client.put(f"{base}/{sid}", headers=auth,
                               json={"name": "Gold", "filter": "tier eq 'gold'"})
    assert changed.status_code == 200 and changed.json()["name"] == "Gold"
    listed = (await client.get(base, headers=auth)).json()
    assert {s["id"] for s in listed["items"]} == {sid, nested["id"]}
    assert (await client.delete(f"{base}/{nested['id']}", headers=auth)).status_code == 204
    assert (await client.delete(f"{base}/{sid}", headers=auth)).status_code == 204
    assert (await client.get(f"{base}/{sid}", headers=auth)).status_code == 404


@pytest.mark.parametrize(("body", "words"), [
    ({"name": "x", "filter": "tier eq"}, "position 8"),
    ({"name": "x", "filter": "in_segment('3f2504e0-4f89-11d3-9a0c-0305e82c3301')"},
     "names no segment"),
    ({"name": "x", "filter": "has_device('3f2504e0-4f89-11d3-9a0c-0305e82c3301')"},
     "names no app"),
    ({"name": "x"}, "needs a filter"),
    ({"name": "x", "kind": "static", "filter": "a eq 1"}, "no filter"),
])
async def test_bad_documents_are_400_and_store_nothing(
        client: httpx.AsyncClient, container: Container, body: dict[str, Any],
        words: str) -> None:
    org, auth = await _org(client, container)
    answer = await client.post(f"/v1/orgs/{org}/segments", headers=auth, json=body)
    assert answer.status_code == 400, answer.text
    assert words in answer.json()["error"]["message"]
    assert (await client.get(f"/v1/orgs/{org}/segments", headers=auth)).json()["items"] == []


async def test_static_segment_imports_ids_and_emails(
        client: httpx.AsyncClient, container: Container) -> None:
    org, auth = await _org(client, container)
    await _people(container, org, [{"id": _pid(i), "email": f"p{i}@example.com",
                                    "attributes": {}} for i in range(5)])
    base = f"/v1/orgs/{org}/segments"
    sid = (await client.post(base, headers=auth,
                             json={"name": "VIPs", "kind": "static"})).json()["id"]
    csv = f"user_id,note\n{_pid(0)},a\n{_pid(1).upper()},b\n{_pid(77)},c\n"
    answer = await client.post(f"{base}/{sid}/members", content=csv,
                               headers={**auth, "content-type": "text/csv"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"added": 2, "already": 0, "unknown": [_pid(77)],
                             "unknown_count": 1}
    jsonl = f'{{"email": "P2@Example.com"}}\n{{"user_id": "{_pid(0)}"}}\n{{"email": "x@y.z"}}\n'
    answer = await client.post(f"{base}/{sid}/members", content=jsonl,
                               headers={**auth, "content-type": "application/x-ndjson"})
    assert answer.json() == {"added": 1, "already": 1, "unknown": ["x@y.z"], "unknown_count": 1}
    assert (await client.get(f"{base}/{sid}/size", headers=auth)).json() == {
        "count": 3, "sample": [_pid(0), _pid(1), _pid(2)]}
    # A static segment inside a dynamic one.
    both = (await client.post(base, headers=auth, json={
        "name": "VIP gmail", "filter": f"in_segment('{sid}') and endswith(email, '2@example.com')"}
                              )).json()
    assert (await container.segments.members(org, both["id"], None, 10)) == [_pid(2)]
    as_json = await client.post(f"{base}/{sid}/members", headers=auth,
                                json={"user_ids": [_pid(3)], "emails": ["p4@example.com"]})
    assert as_json.json() == {"added": 2, "already": 0, "unknown": [], "unknown_count": 0}
    wrong = await client.post(f"{base}/{sid}/members", headers=auth, json={"ids": []})
    assert wrong.status_code == 400 and "user_ids" in wrong.json()["error"]["fix"]
    broken = await client.post(f"{base}/{sid}/members", content='{"email": "a@b.c"}\n{oops\n',
                               headers={**auth, "content-type": "application/x-ndjson"})
    assert broken.status_code == 400 and "line 2" in broken.json()["error"]["message"]


async def test_a_100k_segment_is_read_page_by_page(container: Container) -> None:
    created = await container.orgs.create("Big")
    org = created.id
    await _people(container, org, [
        {"id": _pid(i), "attributes": {"tier": "gold" if i % 2 else "silver", "n": i}}
        for i in range(100_000)])
    segment = await container.segments.create(org, {"name": "odd gold",
                                                     "filter": "tier eq 'gold' and n ge 10"})
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        # One statement per call (LIMIT 5000, keyset on the id): never more rows than that.
        page = await container.segments.members(org, segment.id, after, 5000)
        assert len(page) <= 5000
        if not page:
            break
        pages += 1
        seen.extend(page)
        after = page[-1]
    assert pages == 10
    assert len(seen) == 49_995 and seen == sorted(set(seen))
    assert seen[0] == _pid(11)
    assert (await container.segments.size(org, segment.id)).count == 49_995
