"""Ingest first: background work in the API's process yields while the API is saturated.

``clarion serve`` runs the API and a worker in one process (on one event loop, and on a small
machine on one core). Under a burst of registrations or interaction reports, every CPU second
the in-process worker spends is a second the API does not spend accepting: the app backends see
slow 202s although their requests only need to be stored durably. So the worker paces itself:
after each unit of work it waits ``worked × (1 / share − 1)`` seconds — but only while the
API's group-commit writer reports it is busy (see ``GroupCommitWriter.busy``), and only for
work nobody is waiting on: untracked registrations without a callback, recording accepted
interaction reports, and event publishing.
Tracked registrations (whose status a backend polls) and callbacks are never held back. With
the default ``share`` of 0.1 the worker keeps a tenth of the time under an API burst, and all
of it otherwise. Nothing is lost or dropped: what the API accepted is committed before its 202
and stays queued until the worker gets to it; when the burst ends the worker drains the backlog
at full speed. ``CLARION_WORKER_SHARE_UNDER_LOAD=1`` turns pacing off. Separate ``clarion
worker`` processes have no API and never pace.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager


class Pacer:
    def __init__(self, busy: Callable[[], bool], *, share: float) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self._busy = busy
        self._share = share
        # While the API is busy, paced units run one at a time (each followed by its pause),
        # so the share holds for the whole worker, not for each of its concurrent calls.
        self._one_at_a_time = asyncio.Lock()
        self.paused_seconds = 0.0  # observable: how long the worker yielded so far

    @asynccontextmanager
    async def step(self) -> AsyncIterator[None]:
        """Time one unit of work; after it, yield to the API if the API is saturated."""
        paced = self._share < 1 and self._busy()
        async with self._one_at_a_time if paced else contextlib.nullcontext():
            started = time.perf_counter()
            yield
            await self.after(time.perf_counter() - started)

    async def after(self, worked_seconds: float) -> None:
        if self._share >= 1 or worked_seconds <= 0 or not self._busy():
            return
        pause = worked_seconds * (1 / self._share - 1)
        self.paused_seconds += pause
        await asyncio.sleep(pause)


def never_busy() -> bool:
    return False
