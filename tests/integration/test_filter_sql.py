"""Property: the SQL a filter compiles to (``clarion.store.segments``) selects exactly the people
``filter_evaluation.evaluate`` accepts, on SQLite and on PostgreSQL, for random people and
filters."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

from clarion.domain import filter_evaluation, filters
from clarion.store import segments as store
from clarion.store import tables as t
from clarion.store.db import Database
from clarion.store.migrate import upgrade
from tests.conftest import pg_database

pytestmark = pytest.mark.integration

ORG = "00000000-0000-4000-8000-000000000001"
APP = "00000000-0000-4000-8000-0000000000a1"
STATIC = "00000000-0000-4000-8000-0000000000c1"
BASE = datetime(2026, 1, 1, tzinfo=UTC)


class Harness:
    def __init__(self, url: str) -> None:
        self.runner = asyncio.Runner()
        upgrade(url)
        self.db = Database(url)
        self.runner.run(self._seed())

    async def _seed(self) -> None:
        async with self.db.write() as conn:
            await conn.execute(insert(t.orgs).values(id=ORG, name="o", created_at=BASE))
            await conn.execute(insert(t.apps).values(
                id=APP, org_id=ORG, name="a", settings={}, credential_status={},
                created_at=BASE, updated_at=BASE))
            await conn.execute(insert(t.segments).values(
                id=STATIC, org_id=ORG, name="s", kind="static", filter=None, created_at=BASE,
                updated_at=BASE))

    def matches(self, people: list[dict[str, Any]], node: filters.Filter) -> set[str]:
        return self.runner.run(self._matches(people, node))

    async def _matches(self, people: list[dict[str, Any]], node: filters.Filter) -> set[str]:
        async with self.db.write() as conn:
            await conn.execute(delete(t.people))
            await conn.execute(delete(t.devices))
            await conn.execute(delete(t.segment_members))
            await conn.execute(insert(t.people), [p["row"] for p in people])
            devices = [{"id": f"{i:08d}-0000-4000-8000-00000000d000", "org_id": ORG,
                        "app_id": APP, "person_id": p["row"]["id"], "platform": "web",
                        "token": "x", "token_hash": f"h{i}", "state": p["device"],
                        "created_at": BASE, "updated_at": BASE, "last_registered_at": BASE}
                       for i, p in enumerate(people) if p["device"]]
            if devices:
                await conn.execute(insert(t.devices), devices)
            members = [{"segment_id": STATIC, "person_id": p["row"]["id"]}
                       for p in people if p["member"]]
            if members:
                await conn.execute(insert(t.segment_members), members)
            where = store.condition(conn, ORG, node,
                                    {STATIC: store.Resolved("static", None)})
            rows = await conn.execute(select(t.people.c.id).where(
                t.people.c.org_id == ORG, where))
            return set(rows.scalars().all())

    def close(self) -> None:
        self.runner.run(self.db.dispose())
        self.runner.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def harness(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Harness]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("filters") / "f.db"
        h = Harness(f"sqlite+aiosqlite:///{path}")
        yield h
        h.close()
    else:
        with pg_database() as url:
            h = Harness(url)
            yield h
            h.close()


TEXT = st.text(alphabet="abAé z", max_size=3)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-3, 3),
                   st.integers(-6, 6).map(lambda i: i / 2), TEXT)
ATTRS = ("a", "b", "city")


def _literal(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


@st.composite
def leaf(draw: st.DrawFn) -> str:
    shape = draw(st.sampled_from(["cmp", "cmp", "cmp", "in", "text", "device", "segment",
                                  "created"]))
    if shape == "device":
        return f"has_device('{APP}')"
    if shape == "segment":
        return f"in_segment('{STATIC}')"
    if shape == "created":
        op = draw(st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"]))
        day = draw(st.integers(0, 4))
        return f"created_at {op} '{(BASE + timedelta(days=day)).isoformat()}'"
    person_field = draw(st.booleans())
    field = "first_name" if person_field else draw(st.sampled_from(ATTRS))
    values = st.one_of(st.none(), TEXT) if person_field else SCALAR
    if shape == "text":
        fn = draw(st.sampled_from(["contains", "startswith", "endswith"]))
        return f"{fn}({field}, {_literal(draw(TEXT))})"
    if shape == "in":
        items = draw(st.lists(values, min_size=1, max_size=3))
        return f"{field} in ({', '.join(_literal(v) for v in items)})"
    value = draw(values)
    ops = ["eq", "ne"] if value is None or isinstance(value, bool) else [
        "eq", "ne", "gt", "ge", "lt", "le"]
    return f"{field} {draw(st.sampled_from(ops))} {_literal(value)}"


FILTERS = st.recursive(
    leaf(), lambda inner: st.one_of(
        inner.map(lambda x: f"not ({x})"),
        st.tuples(inner, inner).map(lambda p: f"({p[0]}) and ({p[1]})"),
        st.tuples(inner, inner).map(lambda p: f"({p[0]}) or ({p[1]})")),
    max_leaves=6)


@st.composite
def people(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(1, 8))):
        attributes = {k: v for k in ATTRS
                      if (v := draw(st.one_of(st.just("absent"), SCALAR))) != "absent"}
        created = BASE + timedelta(days=draw(st.integers(0, 4)))
        out.append({
            "row": {"id": f"{i:08d}-0000-4000-8000-000000000000", "org_id": ORG,
                    "kind": "contact", "first_name": draw(st.one_of(st.none(), TEXT)),
                    "attributes": attributes, "created_at": created, "updated_at": created},
            "device": draw(st.sampled_from([None, "active", "invalid"])),
            "member": draw(st.booleans()),
        })
    return out


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(crowd=people(), text=FILTERS)
def test_sql_and_evaluate_agree(harness: Harness, crowd: list[dict[str, Any]],
                                text: str) -> None:
    node = filters.parse(text)
    expected = set()
    for p in crowd:
        row = p["row"]
        facts = filter_evaluation.person_facts(row, row["attributes"])
        if filter_evaluation.evaluate(node, facts,
                            device_apps={APP} if p["device"] == "active" else set(),
                            segments={STATIC} if p["member"] else set()):
            expected.add(row["id"])
    assert harness.matches(crowd, node) == expected, text
