"""Journey machinery speed: a segment journey (the issue's example) over N people on SQLite.

    .venv/bin/python bench/journeys/run.py --people 100000
    .venv/bin/python bench/journeys/run.py --people 1000000 --open-share 0.3

Measures the journey runtime itself (``clarion.services.journey_runtime``): entry pages, the
instances' transactions, push and timer jobs through the real job queue and worker loop. The
parts owned elsewhere are stand-ins here: the segment is a generated id range (keyset pages,
nothing held in memory), the send path only counts the push jobs it is handed (the real one
fans each out to devices: benchmarked in bench/delivery), and person facts are computed, not
read. ``--open-share`` of the people open ``hello`` (an interaction event each), a tenth of them
are gold.

Phases: entry (hello + the wait), then openers' events, then the wait's deadline (everyone
else is nudged). A person-step is one step visit (``path`` entry); the report gives the rate
per phase and overall, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clarion.bootstrap import build
from clarion.clock import FrozenClock
from clarion.config import Settings
from clarion.domain.interactions import InteractionEvent, InteractionKind, Source
from clarion.domain.journeys.engine import Facts, Instance, Variant
from clarion.services.journey_runtime import JourneyRuntime
from clarion.services.journey_tasks import JOURNEY_ENTRY, JOURNEY_PUSH, JOURNEY_TIMER
from clarion.services.journeys import PushOrder
from clarion.store.migrate import upgrade
from clarion.worker.loop import Worker
from clarion.worker.tasks import on

EXAMPLE: dict[str, Any] = {
    "name": "Welcome series", "app_id": "",
    "entry": {"type": "segment", "segment_id": "everyone", "schedule": {"kind": "once"}},
    "steps": [
        {"id": "hello", "type": "push", "message_id": "m-hello"},
        {"id": "opened", "type": "wait_for_interaction", "step": "hello",
         "interaction": "opened", "within": "PT8S", "yes": "tier", "no": "nudge"},
        {"id": "nudge", "type": "push", "message_id": "m-nudge", "next": "end"},
        {"id": "tier", "type": "branch",
         "branches": [{"when": "tier eq 'gold'", "next": "perks"}], "otherwise": "end"},
        {"id": "perks", "type": "push", "message_id": "m-perks"}],
    "reentry": "never"}


def person(i: int) -> str:
    return f"{i:08x}-0000-4000-8000-000000000000"


@dataclass
class Range:
    """Members 0..n-1 in id order, generated page by page."""

    n: int

    async def members(self, org_id: str, segment_id: str, after: str | None,
                      limit: int) -> list[str]:
        start = 0 if after is None else int(after[:8], 16) + 1
        return [person(i) for i in range(start, min(self.n, start + limit))]

    async def contains(self, org_id: str, segment_id: str,
                       person_ids: Sequence[str]) -> set[str]:
        return set()


class Counted:
    def __init__(self) -> None:
        self.pushes = 0

    async def send(self, orders: Sequence[PushOrder]) -> None:
        self.pushes += len(orders)


@dataclass(frozen=True)
class Computed:
    gold: bool

    def matches(self, condition: str) -> bool:
        return self.gold

    def time_zone(self) -> str | None:
        return None

    def interacted(self, step_id: str, interaction: str) -> bool:
        return False

    def winner(self, step_id: str) -> Variant | None:
        return None


class ComputedFacts:
    async def facts(self, org_id: str, instance: Instance,
                    trigger: Mapping[str, object] | None) -> Facts:
        return Computed(int(instance.person_id[:8], 16) % 10 == 0)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(args: argparse.Namespace) -> None:
    home = Path(tempfile.mkdtemp(prefix="clarion-bench-journeys-"))
    url = f"sqlite+aiosqlite:///{home / 'clarion.db'}"
    await asyncio.to_thread(upgrade, url)
    clock = FrozenClock(datetime(2027, 3, 1, 9, tzinfo=UTC))
    c = build(Settings(database_url=url, var_dir=home / "var",  # type: ignore[call-arg]
                       secret_key="bench-" + "k" * 40), clock=clock)
    await c.start()
    push = Counted()
    runtime = JourneyRuntime(c.db, clock, c.queue, segments=Range(args.people), push=push,
                             facts=ComputedFacts())

    async def each(fn: Any, calls: Sequence[Any]) -> None:
        for call in calls:
            await fn(call.args)

    handlers = dict([
        on(JOURNEY_ENTRY, lambda calls: each(runtime.entry_page, calls)),
        on(JOURNEY_TIMER, lambda calls: runtime.timers([k for x in calls for k in x.args]),
           max_jobs=4),
        # A push job carries up to PUSH_BATCH orders: claim a few at a time (bounded memory).
        on(JOURNEY_PUSH, lambda calls: runtime.pushes([o for x in calls for o in x.args]),
           max_jobs=2)])
    worker = Worker(c.queue, handlers, concurrency=2, batch_size=args.batch,
                    poll_seconds=0.05, worker_id="bench")
    try:
        org = await c.orgs.create("Bench")
        app = await c.apps.create(org.id, {"name": "Web", "web": {
            "vapid_subject": "mailto:ops@contoso.com"}})
        doc = copy.deepcopy(EXAMPLE)
        doc["app_id"] = app.app.id
        journey = await c.journeys.create(org.id, doc)
        await c.journeys.start(org.id, journey.id)
        phases: list[tuple[str, float, int]] = []

        t0 = time.perf_counter()
        await runtime.started(journey.id)
        await worker.run_until_idle(max_rounds=10**9)
        phases.append(("entry: hello + wait", time.perf_counter() - t0, 2 * args.people))

        openers = [i for i in range(args.people) if (i * 7919) % 100 < args.open_share * 100]
        t0 = time.perf_counter()
        for start in range(0, len(openers), 500):
            await runtime.on_interactions([InteractionEvent(
                delivery_id="d", send_id="s", org_id=org.id, app_id=app.app.id,
                person_id=person(i), device_id="dev", platform="web", journey_id=journey.id,
                journey_step_id="hello", message_id=None, id=i, kind=InteractionKind.OPENED,
                source=Source.CIJ_EVENTS, first=True, occurred_at=clock.now())
                for i in openers[start:start + 500]])
        await worker.run_until_idle(max_rounds=10**9)
        gold = sum(1 for i in openers if i % 10 == 0)
        phases.append(("opens: tier (+ perks)", time.perf_counter() - t0,
                       len(openers) + gold))

        clock.advance(8)
        t0 = time.perf_counter()
        await worker.run_until_idle(max_rounds=10**9)
        phases.append(("deadline: nudge", time.perf_counter() - t0,
                       args.people - len(openers)))

        total = sum(p[1] for p in phases)
        t0 = time.perf_counter()
        report = await c.journeys.report(org.id, journey.id)
        report_seconds = time.perf_counter() - t0
        visits = sum(s.inflow for s in report.steps)
        print(f"{args.people:,} people, {len(openers):,} openers; pushes handed to the send "
              f"path: {push.pushes:,}")
        for name, seconds, steps in phases:
            print(f"  {name:<24} {seconds:8.1f} s  {steps / seconds:10,.0f} person-steps/s")
        print(f"  {'overall':<24} {total:8.1f} s  {visits / total:10,.0f} person-steps/s "
              f"({visits:,} step visits)")
        print(f"  report (every instance read in pages): {report_seconds:.1f} s")
        print(f"  peak RSS {rss_mb():,.0f} MB")
        assert report.inside == 0
        assert report.people == args.people
    finally:
        await c.close()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--open-share", type=float, default=0.3)
    parser.add_argument("--batch", type=int, default=500, help="worker claim batch size")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    asyncio.run(main(parser.parse_args(sys.argv[1:])))
