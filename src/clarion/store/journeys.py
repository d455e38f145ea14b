"""Queries of journeys, their versioned documents and their instances."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from clarion.domain.journeys.engine import Awaiting, Instance
from clarion.domain.journeys.records import JourneyRead
from clarion.domain.journeys.tally import Figures
from clarion.ids import time_ordered_ids
from clarion.store import tables as t
from clarion.store.db import Conn

_J = t.journeys
_V = t.journey_versions
_I = t.journey_instances


def _read(row: Any) -> JourneyRead:
    return JourneyRead(id=row.id, org_id=row.org_id, app_id=row.app_id, name=row.name,
                       state=row.state, version=row.version, live_version=row.live_version,
                       document=dict(row.document), created_at=row.created_at,
                       updated_at=row.updated_at, started_at=row.started_at,
                       stopped_at=row.stopped_at)


def _with_document() -> Any:
    return select(_J, _V.c.document).join(_V, and_(_V.c.journey_id == _J.c.id,
                                                   _V.c.version == _J.c.version))


async def insert_journey(conn: Conn, *, journey_id: str, org_id: str, app_id: str, name: str,
                         document: Mapping[str, Any], now: datetime) -> None:
    await conn.execute(insert(_J).values(
        id=journey_id, org_id=org_id, app_id=app_id, name=name, state="draft", version=1,
        live_version=None, created_at=now, updated_at=now))
    await conn.execute(insert(_V).values(journey_id=journey_id, version=1,
                                         document=dict(document), created_at=now))


async def get(conn: Conn, org_id: str, journey_id: str, *, lock: bool = False
              ) -> JourneyRead | None:
    query = _with_document().where(_J.c.id == journey_id, _J.c.org_id == org_id)
    if lock:
        query = query.with_for_update(of=_J)
    row = (await conn.execute(query)).first()
    return None if row is None else _read(row)


async def of_org(conn: Conn, org_id: str) -> list[JourneyRead]:
    rows = (await conn.execute(_with_document().where(_J.c.org_id == org_id)
                               .order_by(_J.c.created_at, _J.c.id))).all()
    return [_read(r) for r in rows]


async def document(conn: Conn, journey_id: str, version: int) -> dict[str, Any] | None:
    found = await conn.scalar(select(_V.c.document).where(
        _V.c.journey_id == journey_id, _V.c.version == version))
    return None if found is None else dict(found)


async def add_version(conn: Conn, journey_id: str, version: int,
                      document: Mapping[str, Any], now: datetime) -> None:
    await conn.execute(insert(_V).values(journey_id=journey_id, version=version,
                                         document=dict(document), created_at=now))


async def replace_document(conn: Conn, journey_id: str, version: int,
                           document: Mapping[str, Any]) -> None:
    """Overwrite a version nobody has entered (a draft's)."""
    await conn.execute(update(_V).where(_V.c.journey_id == journey_id,
                                        _V.c.version == version)
                       .values(document=dict(document)))


async def update_journey(conn: Conn, journey_id: str, values: Mapping[str, Any]) -> None:
    """Change columns of a journey (name, app_id, state, version, live_version, times)."""
    await conn.execute(update(_J).where(_J.c.id == journey_id).values(**values))


# ---------------------------------------------------------------------------- instances


def _instance_values(inst: Instance) -> dict[str, Any]:
    waiting = inst.waiting_for
    return {"status": inst.status, "step_id": inst.step_id, "waiting_until": inst.waiting_until,
            "waiting_kind": None if waiting is None else waiting.kind,
            "waiting_key": None if waiting is None else waiting.key,
            "waiting_interaction": None if waiting is None else waiting.interaction,
            "variants": [list(v) for v in inst.variants], "path": list(inst.path),
            "done_reason": inst.done_reason, "goal_met": inst.goal_met}


def _instance(row: Any) -> Instance:
    waiting = None if row.waiting_kind is None else Awaiting(
        row.waiting_kind, row.waiting_key, row.waiting_interaction)
    return Instance(journey_id=row.journey_id, version=row.version, person_id=row.person_id,
                    entry_no=row.entry_no, status=row.status, step_id=row.step_id,
                    waiting_until=row.waiting_until, waiting_for=waiting,
                    variants=tuple((str(s), v) for s, v in row.variants),
                    path=tuple(row.path), done_reason=row.done_reason,
                    goal_met=bool(row.goal_met))


async def insert_instance(conn: Conn, *, instance_id: str, org_id: str, instance: Instance,
                          now: datetime) -> bool:
    """Store a new instance; False (and nothing changes) if the person already has this
    entry of this version (another worker entered them first) or ``instance_id`` exists (the
    same cause entered them already)."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = dialect_insert(_I).values(
        id=instance_id, org_id=org_id, journey_id=instance.journey_id,
        version=instance.version, person_id=instance.person_id, entry_no=instance.entry_no,
        entered_at=now, updated_at=now, **_instance_values(instance),
    ).on_conflict_do_nothing()  # either key: (journey, version, person, entry) or the id
    done = await conn.execute(statement)
    return bool(done.rowcount)


async def save_instance(conn: Conn, instance: Instance, now: datetime) -> None:
    await conn.execute(update(_I).where(
        _I.c.journey_id == instance.journey_id, _I.c.version == instance.version,
        _I.c.person_id == instance.person_id, _I.c.entry_no == instance.entry_no,
    ).values(updated_at=now, **_instance_values(instance)))


async def get_instance(conn: Conn, journey_id: str, version: int, person_id: str,
                       entry_no: int, *, lock: bool = False) -> Instance | None:
    query = select(_I).where(_I.c.journey_id == journey_id, _I.c.version == version,
                             _I.c.person_id == person_id, _I.c.entry_no == entry_no)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    return None if row is None else _instance(row)


async def latest_entry(conn: Conn, journey_id: str, person_id: str) -> Instance | None:
    """The person's most recent entry of the journey, in any version (for re-entry rules)."""
    row = (await conn.execute(select(_I).where(
        _I.c.journey_id == journey_id, _I.c.person_id == person_id)
        .order_by(_I.c.entry_no.desc()).limit(1))).first()
    return None if row is None else _instance(row)


async def waiting_for(conn: Conn, journey_id: str, kind: str, key: str, person_id: str, *,
                      lock: bool = False) -> list[Instance]:
    """The person's instances of the journey waiting for this interaction or trigger (locked
    until the transaction ends with ``lock``, on PostgreSQL)."""
    query = select(_I).where(
        _I.c.journey_id == journey_id, _I.c.waiting_kind == kind, _I.c.waiting_key == key,
        _I.c.person_id == person_id, _I.c.status == "waiting")
    rows = (await conn.execute(query.with_for_update() if lock else query)).all()
    return [_instance(r) for r in rows]


# A journey's instances summed in SQL (``Figures``), per dialect: the paths and variants are
# JSON arrays, unnested by ``json_each`` (SQLite) or ``json_array_elements`` (PostgreSQL).
_FIGURES = {
    "sqlite": (
        "SELECT count(*), coalesce(sum(status <> 'done'), 0), coalesce(sum(goal_met), 0) "
        "FROM journey_instances WHERE journey_id = :j",
        "SELECT je.value, count(*) FROM journey_instances ji, json_each(ji.path) je "
        "WHERE ji.journey_id = :j GROUP BY je.value",
        "SELECT json_extract(path, '$[#-1]'), status <> 'done', done_reason, count(*) "
        "FROM journey_instances WHERE journey_id = :j AND json_array_length(path) > 0 "
        "GROUP BY 1, 2, 3",
        "SELECT json_extract(je.value, '$[0]'), json_extract(je.value, '$[1]'), count(*) "
        "FROM journey_instances ji, json_each(ji.variants) je WHERE ji.journey_id = :j "
        "GROUP BY 1, 2"),
    "postgresql": (
        "SELECT count(*), count(*) FILTER (WHERE status <> 'done'), "
        "count(*) FILTER (WHERE goal_met) FROM journey_instances WHERE journey_id = :j",
        "SELECT e.value, count(*) FROM journey_instances ji "
        "CROSS JOIN LATERAL json_array_elements_text(ji.path) AS e(value) "
        "WHERE ji.journey_id = :j GROUP BY e.value",
        "SELECT path ->> (json_array_length(path) - 1), status <> 'done', done_reason, "
        "count(*) FROM journey_instances WHERE journey_id = :j "
        "AND json_array_length(path) > 0 GROUP BY 1, 2, 3",
        "SELECT v ->> 0, v ->> 1, count(*) FROM journey_instances ji "
        "CROSS JOIN LATERAL json_array_elements(ji.variants) AS v "
        "WHERE ji.journey_id = :j GROUP BY 1, 2"),
}


async def figures(conn: Conn, journey_id: str) -> Figures:
    """Every instance of the journey (all versions) summed by the database: four aggregate
    statements whatever the number of people."""
    people_sql, visits_sql, last_sql, variants_sql = _FIGURES[conn.dialect.name]
    j = {"j": journey_id}
    people, inside, goal_met = (await conn.execute(text(people_sql), j)).one()
    visits = {str(r[0]): int(r[1]) for r in await conn.execute(text(visits_sql), j)}
    last = [(str(r[0]), bool(r[1]), r[2], int(r[3]))
            for r in await conn.execute(text(last_sql), j)]
    variants = [(str(r[0]), str(r[1]), int(r[2]))
                for r in await conn.execute(text(variants_sql), j)]
    return Figures(int(people), int(inside), int(goal_met), visits, last, variants)


async def exit_everyone(conn: Conn, journey_id: str, reason: str, now: datetime) -> int:
    """End every instance still inside (the journey was stopped); their paths stay, so the
    report counts them as exits at the step they were at."""
    done = await conn.execute(update(_I).where(
        _I.c.journey_id == journey_id, _I.c.status != "done").values(
        status="done", done_reason=reason, waiting_until=None, waiting_kind=None,
        waiting_key=None, waiting_interaction=None, updated_at=now))
    return int(done.rowcount or 0)


async def count_inside(conn: Conn, journey_id: str) -> int:
    return int(await conn.scalar(select(func.count()).select_from(_I).where(
        _I.c.journey_id == journey_id, _I.c.status != "done")) or 0)


async def live_of_org(conn: Conn, org_id: str, states: Sequence[str] = ("live",)
                      ) -> list[JourneyRead]:
    """The org's journeys in ``states`` (live ones by default), each with the document
    people enter now."""
    rows = (await conn.execute(
        select(_J, _V.c.document).join(_V, and_(_V.c.journey_id == _J.c.id,
                                                _V.c.version == _J.c.live_version))
        .where(_J.c.org_id == org_id, _J.c.state.in_(list(states))))).all()
    return [_read(r) for r in rows]


async def state_of(conn: Conn, journey_id: str) -> tuple[str, str, str, int | None] | None:
    """(org id, app id, state, live version) of a journey."""
    row = (await conn.execute(select(_J.c.org_id, _J.c.app_id, _J.c.state, _J.c.live_version)
                              .where(_J.c.id == journey_id))).first()
    return None if row is None else (row.org_id, row.app_id, row.state, row.live_version)


async def inside(conn: Conn, journey_id: str, person_id: str, *, lock: bool = False
                 ) -> list[Instance]:
    """The person's instances of the journey still inside (any version)."""
    query = select(_I).where(_I.c.journey_id == journey_id, _I.c.person_id == person_id,
                             _I.c.status != "done")
    rows = (await conn.execute(query.with_for_update() if lock else query)).all()
    return [_instance(r) for r in rows]


async def entries_since(conn: Conn, journey_id: str, since: datetime) -> int:
    """People who entered the journey since ``since`` (the entry rate limit)."""
    return int(await conn.scalar(select(func.count()).select_from(_I).where(
        _I.c.journey_id == journey_id, _I.c.entered_at >= since)) or 0)


async def latest_entries(conn: Conn, journey_id: str, person_ids: Sequence[str]
                         ) -> dict[str, tuple[int, bool]]:
    """Each person's most recent entry of the journey (any version): (entry_no, done)."""
    out: dict[str, tuple[int, bool]] = {}
    if not person_ids:
        return out
    rows = (await conn.execute(select(_I.c.person_id, _I.c.entry_no, _I.c.status).where(
        _I.c.journey_id == journey_id, _I.c.person_id.in_(list(person_ids))))).all()
    for row in rows:
        if row.person_id not in out or row.entry_no > out[row.person_id][0]:
            out[row.person_id] = (row.entry_no, row.status == "done")
    return out


def _insert_new(dialect: str) -> Any:
    dialect_insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return dialect_insert(_I).on_conflict_do_nothing(
        index_elements=["journey_id", "version", "person_id", "entry_no"],
    ).returning(_I.c.person_id, _I.c.entry_no)


# Built once per dialect: an executemany of one cached statement (SQLAlchemy's "insert many
# values" batches it), instead of a multi-VALUES statement compiled anew for every page.
_INSERT_NEW = {name: _insert_new(name) for name in ("postgresql", "sqlite")}


async def insert_instances(conn: Conn, org_id: str, instances: Sequence[Instance],
                           now: datetime) -> set[tuple[str, int]]:
    """Store new instances in one statement; the (person, entry_no) pairs inserted (the
    others existed: another worker entered them first)."""
    if not instances:
        return set()
    ids = time_ordered_ids(len(instances), int(now.timestamp() * 1000))
    rows = [{"id": i, "org_id": org_id, "journey_id": inst.journey_id,
             "version": inst.version, "person_id": inst.person_id, "entry_no": inst.entry_no,
             "entered_at": now, "updated_at": now, **_instance_values(inst)}
            for i, inst in zip(ids, instances, strict=True)]
    result = await conn.execute(_INSERT_NEW[conn.dialect.name], rows)
    return {(r.person_id, r.entry_no) for r in result.all()}


async def entered_at(conn: Conn, journey_id: str, version: int, person_id: str,
                     entry_no: int) -> datetime | None:
    found: datetime | None = await conn.scalar(select(_I.c.entered_at).where(
        _I.c.journey_id == journey_id, _I.c.version == version,
        _I.c.person_id == person_id, _I.c.entry_no == entry_no))
    return found


async def step_interactions(conn: Conn, org_id: str, journey_id: str, person_id: str,
                            since: datetime) -> set[tuple[str, str]]:
    """(journey step id, kind) of the person's opens and clicks of the journey's pushes
    since ``since`` (the person's entry)."""
    it = t.interactions
    rows = (await conn.execute(select(it.c.journey_step_id, it.c.kind).distinct().where(
        it.c.org_id == org_id, it.c.person_id == person_id, it.c.occurred_at >= since,
        it.c.journey_id == journey_id, it.c.kind.in_(("opened", "clicked"))))).all()
    return {(str(r.journey_step_id), str(r.kind)) for r in rows if r.journey_step_id}


async def instances_of(conn: Conn, journey_id: str, version: int, person_ids: Sequence[str],
                       *, lock: bool = False) -> list[Instance]:
    """The instances of these people in one version (every entry), in one query."""
    if not person_ids:
        return []
    query = select(_I).where(_I.c.journey_id == journey_id, _I.c.version == version,
                             _I.c.person_id.in_(list(person_ids)))
    rows = (await conn.execute(query.with_for_update() if lock else query)).all()
    return [_instance(r) for r in rows]


async def waiting_of(conn: Conn, journey_id: str, kind: str, key: str,
                     person_ids: Sequence[str], *, lock: bool = False) -> list[Instance]:
    """Those of these people's instances of the journey waiting for this interaction or
    trigger, in one query."""
    if not person_ids:
        return []
    query = select(_I).where(
        _I.c.journey_id == journey_id, _I.c.waiting_kind == kind, _I.c.waiting_key == key,
        _I.c.person_id.in_(list(person_ids)), _I.c.status == "waiting")
    rows = (await conn.execute(query.with_for_update() if lock else query)).all()
    return [_instance(r) for r in rows]


_SAVE = update(_I).where(
    _I.c.journey_id == bindparam("k_journey"), _I.c.version == bindparam("k_version"),
    _I.c.person_id == bindparam("k_person"), _I.c.entry_no == bindparam("k_entry"),
).values({name: bindparam(name) for name in (
    "status", "step_id", "waiting_until", "waiting_kind", "waiting_key",
    "waiting_interaction", "variants", "path", "done_reason", "goal_met", "updated_at")})


async def save_instances(conn: Conn, instances: Sequence[Instance], now: datetime) -> None:
    """Save moved instances with one executemany."""
    if instances:
        await conn.execute(_SAVE, [
            {"k_journey": i.journey_id, "k_version": i.version, "k_person": i.person_id,
             "k_entry": i.entry_no, "updated_at": now, **_instance_values(i)}
            for i in instances])
