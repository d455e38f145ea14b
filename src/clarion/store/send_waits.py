"""Why a send's pending deliveries wait: a read of the deliveries table grouped by the reason
of their last attempt.

Apart from ``clarion.store.sends`` (the delivery hot path) because it serves only readers of a
send (``GET /v1/…/sends/{id}``, ``clarion send --wait``): one grouped scan of the send's own
rows, through the ``(send_id, device_id)`` key, run only while something is pending.
"""

from __future__ import annotations

from sqlalchemy import func, select

from clarion.domain.sends import Waiting
from clarion.store import tables as t
from clarion.store.db import Conn

_DL = t.deliveries


async def waiting(conn: Conn, send_id: str) -> list[Waiting]:
    """Pending deliveries that were tried (their last attempt left a reason), per platform and
    reason, the most numerous first."""
    n = func.count().label("n")
    rows = (await conn.execute(
        select(_DL.c.platform, _DL.c.reason, n, func.max(_DL.c.detail).label("detail"))
        .where(_DL.c.send_id == send_id, _DL.c.state == "pending", _DL.c.reason.is_not(None))
        .group_by(_DL.c.platform, _DL.c.reason)
        .order_by(n.desc(), _DL.c.platform, _DL.c.reason))).all()
    return [Waiting(r.platform, r.reason, int(r.n), r.detail) for r in rows]
