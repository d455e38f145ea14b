"""Journey speed on the real parts: the issue's example over N people on SQLite, with the
segment evaluated by the filter language (keyset pages of ``Segments.members``) and the
person facts read from the database (``FilterFacts``: a page's people, a timer batch's
people, entries and opens read together), as ``bootstrap.build`` wires them.

    .venv/bin/python bench/journeys/wired.py --people 100000

Phases: entry (``hello`` + the wait, through ``journey.entry`` jobs), the ``hello`` push
jobs (each job's orders become one personalised send: ``journey.push``), then the wait's
deadline (everyone is nudged, through ``journey.timer`` jobs) and the ``nudge`` push jobs.
What the sends then queue (fan-out to devices, delivery) is benchmarked in bench/delivery and
left queued here. Compare with run.py, whose segment and facts are stand-ins.

``--compliance`` (issue 15): every person gets one Android device (inserted directly: setting
up is not measured), the org has quiet times (nights, 21:00–08:00; the run happens at 09:00,
so every person is screened and none held) and a frequency cap of 5 pushes a day (counted,
not reached), and each push phase also runs the sends' fan-out: the compliance screen, the cap
ledger and one delivery per device (the delivery jobs stay queued).

    .venv/bin/python bench/journeys/wired.py --people 1000000 --compliance
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select, text

from clarion.bootstrap import Container, build
from clarion.clock import FrozenClock
from clarion.config import Settings
from clarion.domain.journeys.engine import LATE_INTERACTION_GRACE
from clarion.domain.outcomes import Platform
from clarion.domain.push_messages import PushMessageIn
from clarion.providers.fake import FakeSender
from clarion.services.fanout import SEND_FANOUT
from clarion.services.journey_tasks import JOURNEY_ENTRY, JOURNEY_PUSH, JOURNEY_TIMER
from clarion.store import tables as t
from clarion.store.migrate import upgrade
from clarion.worker.loop import Worker
from clarion.worker.tasks import build_handlers

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.factories import app_document  # the test credentials: no network


def _rate(n: int, seconds: float) -> str:
    return f"{seconds:6.1f} s  {n / seconds:>10,.0f} person-steps/s"


async def _devices(c: Container, org_id: str, app_id: str) -> None:
    """One active Android device per person, inserted directly (set-up, not measured)."""
    now = datetime.now(UTC)
    after = ""
    while True:
        async with c.db.write() as conn:
            ids = (await conn.execute(select(t.people.c.id).where(
                t.people.c.org_id == org_id, t.people.c.id > after).order_by(
                t.people.c.id).limit(10_000))).scalars().all()
            if not ids:
                return
            await conn.execute(insert(t.devices), [
                {"id": str(uuid.uuid4()), "org_id": org_id, "app_id": app_id,
                 "person_id": p, "platform": "android", "token": f"fcm-{p}",
                 "token_hash": uuid.uuid4().hex * 2, "web_keys": None, "state": "active",
                 "state_reason": None, "state_changed_at": now, "created_at": now,
                 "updated_at": now, "last_registered_at": now} for p in ids])
        after = str(ids[-1])


async def _run(people: int, directory: Path, compliance: bool) -> None:
    url = f"sqlite+aiosqlite:///{directory / 'bench.db'}"
    await asyncio.to_thread(upgrade, url)
    clock = FrozenClock(datetime(2027, 3, 1, 9, tzinfo=UTC))
    settings = Settings(database_url=url, var_dir=directory / "var", secret_key="b" * 64,
                        fcm_url="http://127.0.0.1:9")
    c = build(settings, clock=clock, senders=dict.fromkeys(Platform, FakeSender()))
    await c.start()
    try:
        org = await c.orgs.create("Bench")
        app = await c.apps.create(org.id, app_document())
        rows = ({"email": f"p{i}@bench.example", "first_name": f"P{i}",
                 "tier": "gold" if i % 10 == 0 else "silver"} for i in range(people))
        await c.importer.import_people(org.id, rows)
        if compliance:
            await _devices(c, org.id, app.app.id)
            await c.compliance.set_quiet_times(org.id, {
                "name": "Nights", "general": {"commercial": {
                    "windows": [{"start": "21:00", "end": "08:00"}]}}})
            await c.compliance.set_frequency_caps(org.id, {
                "push": {"per_24h": 5, "per_7d": None, "per_30d": None}})
        segment = await c.segments.create(org.id, {
            "name": "Gold and silver", "filter": "tier eq 'gold' or tier eq 'silver'"})
        # ``hello`` reads each person's first name (rendered per person at fan-out); the
        # others are the same for everyone (rendered once, when the send is made).
        personal = {"title": "Hello {{Name}}", "placeholders": {
            "Name": {"source": "audience", "field": "first_name", "default": "there"}}}
        ids = [(await c.messages.create(org.id, PushMessageIn.model_validate({
            "name": name, "app_id": app.app.id, "category": "commercial", "title": name,
            "body": "x", **(personal if name == "hello" else {})}))).id
            for name in ("hello", "nudge", "perks")]
        journey = await c.journeys.create(org.id, {
            "name": "Welcome series", "app_id": app.app.id,
            "entry": {"type": "segment", "segment_id": segment.id,
                      "schedule": {"kind": "once"}},
            "steps": [
                {"id": "hello", "type": "push", "message_id": ids[0]},
                {"id": "opened", "type": "wait_for_interaction", "step": "hello",
                 "interaction": "opened", "within": "PT8S", "yes": "tier", "no": "nudge"},
                {"id": "nudge", "type": "push", "message_id": ids[1], "next": "end"},
                {"id": "tier", "type": "branch",
                 "branches": [{"when": "tier eq 'gold'", "next": "perks"}],
                 "otherwise": "end"},
                {"id": "perks", "type": "push", "message_id": ids[2]}],
            "reentry": "never"})
        handlers = build_handlers(c)

        async def run(kind: str) -> float:
            worker = Worker(c.queue, {kind: handlers[kind]}, concurrency=1, batch_size=10,
                            poll_seconds=0.05, worker_id="bench")
            started = time.perf_counter()
            await worker.run_until_idle(max_rounds=10_000_000)
            return time.perf_counter() - started

        started = time.perf_counter()
        await c.journeys.start(org.id, journey.id)
        entry = time.perf_counter() - started + await run(JOURNEY_ENTRY.name)
        hello_sends = await run(JOURNEY_PUSH.name)
        hello_fanout = await run(SEND_FANOUT.name) if compliance else 0.0
        clock.advance(8 + LATE_INTERACTION_GRACE.total_seconds() + 1)  # past the deadline
        deadline = await run(JOURNEY_TIMER.name)
        nudge_sends = await run(JOURNEY_PUSH.name)
        nudge_fanout = await run(SEND_FANOUT.name) if compliance else 0.0
        async with c.db.read() as conn:
            sends = await conn.scalar(text("SELECT count(*) FROM sends"))
        started = time.perf_counter()
        report = await c.journeys.report(org.id, journey.id)
        report_s = time.perf_counter() - started
        steps = {s.id: s for s in report.steps}
        assert steps["hello"].inflow == people, steps
        assert steps["nudge"].inflow == people, steps
        print(f"{people:,} people, the issue's example on the real segment and facts")
        print(f"  entry: hello + wait      {_rate(2 * people, entry)}")
        print(f"  hello push jobs → sends  {hello_sends:6.1f} s  {people / hello_sends:>10,.0f} "
              "people/s")
        print(f"  deadline: nudge          {_rate(2 * people, deadline)}")
        print(f"  nudge push jobs → sends  {nudge_sends:6.1f} s  {people / nudge_sends:>10,.0f} "
              "people/s")
        print(f"  overall, engine only     {_rate(4 * people, entry + deadline)}")
        total = entry + hello_sends + deadline + nudge_sends
        print(f"  overall, with the sends  {_rate(4 * people, total)}  ({sends} sends)")
        if compliance:
            async with c.db.read() as conn:
                made = await conn.scalar(text("SELECT count(*) FROM deliveries"))
                ledger = await conn.scalar(text("SELECT count(*) FROM cap_ledger"))
            assert made == 2 * people, made  # one delivery per device per push step
            assert ledger == 2 * people, ledger  # each push counted for the cap
            print(f"  fan-out under compliance {hello_fanout + nudge_fanout:6.1f} s  "
                  f"{2 * people / (hello_fanout + nudge_fanout):>10,.0f} people/s  "
                  f"({made:,} deliveries, {ledger:,} cap ledger rows)")
            total += hello_fanout + nudge_fanout
            print(f"  overall, sends and fan-out under quiet times and caps "
                  f"{_rate(4 * people, total)}")
        print(f"  report (GET …/report)    {report_s:6.1f} s")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(f"  peak RSS {peak} MB")
    finally:
        await c.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--compliance", action="store_true",
                        help="devices, quiet times and a cap; run the sends' fan-out too")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="clarion-journeys-wired-"))
    try:
        asyncio.run(_run(args.people, directory, args.compliance))
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            print(f"  database kept in {directory}")


if __name__ == "__main__":
    main()
