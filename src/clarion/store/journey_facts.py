"""Batched reads of what journey conditions and waits ask about a batch of instances: their
entry times and their opens and clicks of the journey's pushes since (one statement each per
batch, where ``clarion.store.journeys`` reads them person by person)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from clarion.store import tables as t
from clarion.store.db import Conn

_I = t.journey_instances.c
_IT = t.interactions.c


async def entered_at(conn: Conn, journey_id: str, version: int | None,
                     person_ids: Sequence[str]) -> dict[tuple[int, str, int], datetime]:
    """(version, person id, entry number) -> when they entered, for one version (or every
    version: ``None``) of the journey."""
    if not person_ids:
        return {}
    query = select(_I.version, _I.person_id, _I.entry_no, _I.entered_at).where(
        _I.journey_id == journey_id, _I.person_id.in_(list(person_ids)))
    if version is not None:
        query = query.where(_I.version == version)
    rows = (await conn.execute(query)).all()
    return {(int(r.version), str(r.person_id), int(r.entry_no)): r.entered_at for r in rows}


async def step_interactions(conn: Conn, org_id: str, journey_id: str,
                            person_ids: Sequence[str], since: datetime
                            ) -> dict[str, list[tuple[str, str, datetime]]]:
    """person id -> (journey step id, kind, occurred at) of their opens and clicks of the
    journey's pushes since ``since`` (the earliest entry of the batch)."""
    if not person_ids:
        return {}
    rows = (await conn.execute(select(
        _IT.person_id, _IT.journey_step_id, _IT.kind, _IT.occurred_at).where(
        _IT.org_id == org_id, _IT.person_id.in_(list(person_ids)),
        _IT.occurred_at >= since, _IT.journey_id == journey_id,
        _IT.kind.in_(("opened", "clicked"))))).all()
    out: dict[str, list[tuple[str, str, datetime]]] = {}
    for r in rows:
        if r.journey_step_id:
            out.setdefault(str(r.person_id), []).append(
                (str(r.journey_step_id), str(r.kind), r.occurred_at))
    return out
