"""Report speed over 10,000,000 interaction rows: build the data once, then time the reports.

    .venv/bin/python bench/reports/run.py                       # SQLite, build + time
    .venv/bin/python bench/reports/run.py --reuse               # time an existing build again
    .venv/bin/python bench/reports/run.py --pg postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/reports/run.py --interactions 200000 --sends 100   # a quick try

The data set imitates a month of an org: ``--sends`` sends (default 2,000) spread over
``--days`` days (30) across ``--apps`` apps (4), audiences drawn from a log-normal law
(hundreds to tens of thousands of people), 1-3 devices per person on iOS / Android / Web,
device outcomes (accepted 93 %, invalid token, mismatch, rejected, expired) and interactions
timed after each send (delivered within seconds, opens over hours with a long tail up to three
days, clicks after opens, dismissals). The roll-ups are computed from exactly these rows with
the rules of the write paths (first report of a kind per delivery / per (send, person)) and
the project's own ``clarion.store.rollups.rollup_rows``; they are bulk-loaded, not written
through the services (that would take hours and measures the write path, not reports).

Then ``Reports.report`` (``clarion.services.reports``) — behind the API and the CLI — is timed
``--runs`` times (20) per case: the org, the busiest app and the busiest send, over the whole
range, hourly and daily, split by platform. For comparison, the same org report summed from
``report_counters`` (what a report would cost without ``report_rollups``) and one scan of the
interaction rows are timed too.

Data lives in ``--dir`` (default /tmp/clarion-bench-reports; ~5 GB for SQLite) and is kept for
``--reuse``. PostgreSQL: a database ``clarion_bench_reports`` is (re)created on the server.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sqlite3
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

from clarion.clock import SystemClock
from clarion.services.reports import Reports
from clarion.store import tables as t
from clarion.store.db import Database
from clarion.store.rollups import rollup_rows

START = datetime(2026, 1, 1, tzinfo=UTC)
PLATFORMS = (("ios", 0.45), ("android", 0.45), ("web", 0.10))
OUTCOMES = (("accepted", 0.93), ("invalid_token", 0.04), ("mismatch", 0.01),
            ("rejected", 0.01), ("expired", 0.01))
EVENTS_PER_DEVICE = 1.43  # expected interactions per accepted device (see _device_events)
DEVICES_PER_PERSON = 1.35
WITH_DEVICE = 0.92  # people with at least one active device
MARGIN = 1.015  # generate a little more than asked, then stop at exactly the target


def gid(kind: int, n: int) -> str:
    """A deterministic GUID-shaped id (36 characters, as the real ones)."""
    h = f"{kind:04x}{n:028x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


@dataclass
class Send:
    id: str
    app_id: str
    at: float  # epoch seconds
    people: int


@dataclass
class Batch:
    """One send's rows: the send, its interaction rows and its counter rows."""

    send: Send
    interactions: list[tuple[Any, ...]] = field(default_factory=list)
    counters: dict[tuple[str, int, str], int] = field(
        default_factory=lambda: defaultdict(int))  # (platform, hour, metric) -> n


@dataclass
class Plan:
    org_id: str
    apps: list[str]
    sends: list[Send]
    target: int


def plan(args: argparse.Namespace) -> Plan:
    rnd = random.Random(args.seed)
    org = gid(1, 1)
    apps = [gid(2, i) for i in range(args.apps)]
    weights = [rnd.lognormvariate(0, 1.0) for _ in range(args.sends)]
    per_person = DEVICES_PER_PERSON * WITH_DEVICE * 0.93 * EVENTS_PER_DEVICE
    people_total = args.interactions * MARGIN / per_person
    scale = people_total / sum(weights)
    span = args.days * 86400
    times = sorted(START.timestamp() + rnd.random() * (span - 3 * 86400)
                   for _ in range(args.sends))
    sends = [Send(gid(3, i), apps[min(int(rnd.paretovariate(1.2)) - 1, len(apps) - 1)], at,
                  max(1, round(w * scale))) for i, (w, at) in enumerate(zip(
                      weights, times, strict=True))]
    return Plan(org, apps, sends, args.interactions)


def _pick(rnd: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    x = rnd.random()
    for name, p in table:
        x -= p
        if x < 0:
            return name
    return table[-1][0]


def generate(p: Plan, seed: int) -> Iterator[Batch]:
    """Per send, in time order; stops at exactly ``p.target`` interaction rows."""
    rnd = random.Random(seed + 1)
    left = p.target
    person_pool = 2_000_000
    for s_index, s in enumerate(p.sends):
        b = Batch(s)
        c = b.counters
        hour0 = int(s.at) // 3600
        firsts: set[tuple[str, str]] = set()  # (person, kind): unique people per send
        engaged: set[str] = set()
        sent_people: set[str] = set()
        c[("", hour0, "inflow")] += s.people
        base = rnd.randrange(person_pool)
        for k in range(s.people):
            person_n = (base + k * 7919) % person_pool
            if rnd.random() > WITH_DEVICE:
                c[("", hour0, "not_sent:no_valid_device")] += 1
                continue
            person = gid(4, person_n)
            n_dev = 1 if rnd.random() < 0.7 else (2 if rnd.random() < 0.83 else 3)
            for d in range(n_dev):
                platform = _pick(rnd, PLATFORMS)
                device = gid(5, person_n * 4 + d)
                outcome = _pick(rnd, OUTCOMES)
                c[(platform, hour0, "deliveries")] += 1
                out_hour = (int(s.at) + rnd.randrange(5)) // 3600
                if outcome != "accepted":
                    c[(platform, out_hour, f"not_sent:{outcome}")] += 1
                    continue
                c[(platform, out_hour, "sent")] += 1
                if person not in sent_people:
                    sent_people.add(person)
                    c[(platform, out_hour, "sent_people")] += 1
                if left <= 0:
                    continue
                delivery = gid(6, s_index * 10**9 + k * 4 + d)
                for kind, at in _device_events(rnd, s.at):
                    if left <= 0:
                        break
                    left -= 1
                    hour = int(at) // 3600
                    first_device = (delivery, kind) not in firsts
                    c[(platform, hour, kind)] += 1
                    if first_device:
                        firsts.add((delivery, kind))
                        c[(platform, hour, f"unique_{kind}_devices")] += 1
                    if (person, kind) not in firsts:
                        firsts.add((person, kind))
                        c[(platform, hour, f"unique_{kind}_people")] += 1
                    if kind in ("opened", "clicked") and person not in engaged:
                        engaged.add(person)
                        c[(platform, hour, "unique_engaged_people")] += 1
                    b.interactions.append((
                        p.org_id, s.app_id, s.id, delivery, person, device, platform, kind,
                        "link" if kind == "clicked" else "cij_events", first_device, at))
        yield b
    if left > 0:
        raise SystemExit(f"generated {p.target - left:,} interactions, fewer than asked: run "
                         "with another --seed or more --sends")


def _device_events(rnd: random.Random, sent_at: float) -> list[tuple[str, float]]:
    """Interactions of one accepted device: ~1.43 on average (0.93 delivered, 0.14 opened,
    0.06 clicked, 0.30 dismissed)."""
    out: list[tuple[str, float]] = []
    if rnd.random() < 0.9:
        at = sent_at + rnd.expovariate(1 / 30)
        out.append(("delivered", at))
        if rnd.random() < 0.03:
            out.append(("delivered", at + 60))
    if rnd.random() < 0.12:
        at = sent_at + min(rnd.expovariate(1 / 7200), 72 * 3600)
        out.append(("opened", at))
        if rnd.random() < 0.2:
            out.append(("opened", at + rnd.expovariate(1 / 3600)))
        if rnd.random() < 0.35:
            out.append(("clicked", at + rnd.expovariate(1 / 60)))
    elif rnd.random() < 0.02:
        out.append(("clicked", sent_at + min(rnd.expovariate(1 / 7200), 72 * 3600)))
    if rnd.random() < 0.3:
        out.append(("dismissed", sent_at + min(rnd.expovariate(1 / 10800), 72 * 3600)))
    return out


def counter_rows(p: Plan, b: Batch) -> list[dict[str, Any]]:
    return [{"org_id": p.org_id, "app_id": b.send.app_id, "send_id": b.send.id,
             "platform": plat, "hour": hour, "metric": metric, "value": n, "journey_id": None,
             "journey_step_id": None, "message_id": None}
            for (plat, hour, metric), n in b.counters.items()]


# ------------------------------------------------------------------------------ loading


class Progress:
    def __init__(self, target: int) -> None:
        self.target, self.done, self.t0 = target, 0, time.monotonic()
        self.last = 0.0

    def add(self, n: int, extra: str = "") -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= 2 or self.done >= self.target:
            self.last = now
            rate = self.done / max(now - self.t0, 1e-9)
            eta = (self.target - self.done) / rate if rate else math.inf
            print(f"  {self.done:>12,} / {self.target:,} interactions  {rate:>9,.0f}/s  "
                  f"ETA {eta:5.0f} s {extra}", file=sys.stderr, flush=True)


def _iso(ts: float) -> str:
    """SQLAlchemy's SQLite text form of a UTC datetime."""
    d = datetime.fromtimestamp(ts, UTC)
    return d.strftime("%Y-%m-%d %H:%M:%S.%f")


def _fixed_rows(p: Plan) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                  list[dict[str, Any]]]:
    now = START
    org: list[dict[str, Any]] = [{"id": p.org_id, "name": "Bench", "created_at": now}]
    apps: list[dict[str, Any]] = [
        {"id": a, "org_id": p.org_id, "name": f"App {i}", "ios": None, "android": None,
             "web": None, "secrets": None, "settings": {}, "credential_status": {},
             "created_at": now, "updated_at": now} for i, a in enumerate(p.apps)]
    sends: list[dict[str, Any]] = [
        {"id": s.id, "org_id": p.org_id, "app_id": s.app_id, "user_ids": [],
              "message": {"title": "Bench"}, "idempotency_key": None, "state": "fanned_out",
              "fanned_out_people": s.people, "device_count": 0, "journey_id": None,
              "journey_step_id": None, "message_id": None,
              "created_at": datetime.fromtimestamp(s.at, UTC),
              "expires_at": datetime.fromtimestamp(s.at, UTC) + timedelta(days=28),
              "fanned_out_at": datetime.fromtimestamp(s.at, UTC)} for s in p.sends]
    return org, apps, sends


_INTERACTION_COLS = ("org_id", "app_id", "send_id", "delivery_id", "person_id", "device_id",
                     "platform", "kind", "source", "first", "occurred_at")
_COUNTER_COLS = ("org_id", "app_id", "send_id", "platform", "hour", "metric", "journey_id",
                 "journey_step_id", "message_id", "value")
_ROLLUP_COLS = ("org_id", "scope", "scope_id", "hour", "platform", "metric", "value")


def build_sqlite(path: Path, p: Plan, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = create_engine(f"sqlite:///{path}")
    t.metadata.create_all(engine)
    org, apps, sends = _fixed_rows(p)
    with engine.begin() as conn:
        conn.execute(t.orgs.insert(), org)
        conn.execute(t.apps.insert(), apps)
        conn.execute(t.sends.insert(), sends)
    interaction_indexes = list(t.interactions.indexes)
    with engine.begin() as conn:  # load first, index after: much faster than indexed inserts
        for ix in interaction_indexes:
            conn.execute(text(f"DROP INDEX {ix.name}"))
    engine.dispose()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-512000")
    ins_i = (f"INSERT INTO interactions ({', '.join(_INTERACTION_COLS)}) VALUES "
             f"({', '.join('?' * len(_INTERACTION_COLS))})")
    ins_c = (f"INSERT INTO report_counters ({', '.join(_COUNTER_COLS)}) VALUES "
             f"({', '.join('?' * len(_COUNTER_COLS))})")
    rollups: dict[tuple[Any, ...], int] = defaultdict(int)
    progress = Progress(p.target)
    pending: list[tuple[Any, ...]] = []
    for b in generate(p, seed):
        rows = counter_rows(p, b)
        db.executemany(ins_c, [tuple(r[k] for k in _COUNTER_COLS) for r in rows])
        for r in rollup_rows(rows):
            rollups[tuple(r[k] for k in _ROLLUP_COLS[:-1])] += r["value"]
        pending.extend((*row[:-1], _iso(row[-1])) for row in b.interactions)
        if len(pending) >= 200_000:
            db.executemany(ins_i, pending)
            db.commit()
            progress.add(len(pending))
            pending = []
    db.executemany(ins_i, pending)
    progress.add(len(pending))
    db.executemany(f"INSERT INTO report_rollups ({', '.join(_ROLLUP_COLS)}) VALUES "
                   f"({', '.join('?' * len(_ROLLUP_COLS))})",
                   [(*k, v) for k, v in rollups.items()])
    db.commit()
    for ix in interaction_indexes:
        t0 = time.monotonic()
        cols = ", ".join(c.name for c in ix.columns)
        db.execute(f"CREATE INDEX {ix.name} ON interactions ({cols})")
        db.commit()
        print(f"  index {ix.name}: {time.monotonic() - t0:.0f} s", file=sys.stderr)
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


async def build_pg(url: str, p: Plan, seed: int) -> None:
    import asyncpg  # type: ignore[import-untyped]

    engine = create_async_engine(url)
    async with engine.begin() as c:
        await c.run_sync(t.metadata.drop_all)
        await c.run_sync(t.metadata.create_all)
        org, apps, sends = _fixed_rows(p)
        await c.execute(t.orgs.insert(), org)
        await c.execute(t.apps.insert(), apps)
        await c.execute(t.sends.insert(), sends)
        for ix in t.interactions.indexes:
            await c.execute(text(f"DROP INDEX {ix.name}"))
    await engine.dispose()
    pg = await asyncpg.connect(url.replace("+asyncpg", ""))
    rollups: dict[tuple[Any, ...], int] = defaultdict(int)
    progress = Progress(p.target)
    pending: list[tuple[Any, ...]] = []
    counters_pending: list[tuple[Any, ...]] = []
    for b in generate(p, seed):
        rows = counter_rows(p, b)
        counters_pending.extend(tuple(r[k] for k in _COUNTER_COLS) for r in rows)
        for r in rollup_rows(rows):
            rollups[tuple(r[k] for k in _ROLLUP_COLS[:-1])] += r["value"]
        pending.extend((*row[:-1], datetime.fromtimestamp(row[-1], UTC))
                       for row in b.interactions)
        if len(pending) >= 200_000:
            await pg.copy_records_to_table("interactions", records=pending,
                                           columns=list(_INTERACTION_COLS))
            await pg.copy_records_to_table("report_counters", records=counters_pending,
                                           columns=list(_COUNTER_COLS))
            progress.add(len(pending))
            pending, counters_pending = [], []
    await pg.copy_records_to_table("interactions", records=pending,
                                   columns=list(_INTERACTION_COLS))
    await pg.copy_records_to_table("report_counters", records=counters_pending,
                                   columns=list(_COUNTER_COLS))
    progress.add(len(pending))
    await pg.copy_records_to_table("report_rollups", records=[(*k, v) for k, v in
                                                              rollups.items()],
                                   columns=list(_ROLLUP_COLS))
    for ix in t.interactions.indexes:
        t0 = time.monotonic()
        cols = ", ".join(c.name for c in ix.columns)
        await pg.execute(f"CREATE INDEX {ix.name} ON interactions ({cols})")
        print(f"  index {ix.name}: {time.monotonic() - t0:.0f} s", file=sys.stderr)
    await pg.execute("VACUUM ANALYZE")
    await pg.close()


# ------------------------------------------------------------------------------- timing


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


async def time_reports(url: str, p: Plan, runs: int) -> list[dict[str, Any]]:
    db = Database(url)
    service = Reports(db, SystemClock())
    since = START
    until = START + timedelta(days=30)
    biggest_app = max(p.apps, key=lambda a: sum(s.people for s in p.sends if s.app_id == a))
    biggest_send = max(p.sends, key=lambda s: s.people)
    cases: list[tuple[str, str, str | None, str]] = []
    for scope, scope_id in (("org", None), ("app", biggest_app), ("send", biggest_send.id)):
        for gran in ("hour", "day"):
            cases.append((f"{scope} {'hourly' if gran == 'hour' else 'daily'} by platform",
                          scope, scope_id, gran))
    results = []
    try:
        for label, scope, scope_id, gran in cases:
            times = []
            rep = None
            for _ in range(runs):
                t0 = time.perf_counter()
                rep = await service.report(
                    p.org_id, scope=scope,  # type: ignore[arg-type]
                    scope_id=scope_id, since=since, until=until,
                    granularity=gran,  # type: ignore[arg-type]
                    by_platform=True)
                times.append(time.perf_counter() - t0)
            assert rep is not None
            p50, p99 = statistics.median(times), _pct(times, 0.99)
            results.append({"case": label, "p50": p50, "p99": p99, "max": max(times),
                            "buckets": len(rep.series), "sent_people": rep.totals.sent_people,
                            "opened_events": rep.totals.opened.events})
            print(f"  {label:<44} p50 {p50 * 1000:8.1f} ms   p99 {p99 * 1000:8.1f} ms",
                  file=sys.stderr)
        results += await _time_api(url, p, runs)
        # Side by side: the same org report without report_rollups, and a raw scan.
        naive = ("SELECT hour, platform, metric, SUM(value) FROM report_counters "
                 "WHERE org_id = :o AND hour >= :a AND hour < :b GROUP BY hour, platform, "
                 "metric")
        scan = ("SELECT kind, platform, COUNT(*) FROM interactions WHERE org_id = :o "
                "AND occurred_at >= :s AND occurred_at < :u GROUP BY kind, platform")
        for label, sql, params, n in (
            ("org hourly, SQL only, from report_counters", naive,
             {"o": p.org_id, "a": int(since.timestamp()) // 3600,
              "b": int(until.timestamp()) // 3600}, 3),
            ("org totals, SQL only, scanning interactions", scan,
             {"o": p.org_id, "s": _bind(db, since), "u": _bind(db, until)}, 1),
        ):
            times = []
            for _ in range(n):
                async with db.read() as conn:
                    t0 = time.perf_counter()
                    await conn.execute(text(sql).bindparams(**params))
                    times.append(time.perf_counter() - t0)
            results.append({"case": label, "p50": statistics.median(times),
                            "p99": max(times), "max": max(times), "runs": n})
            print(f"  {label:<44} p50 {statistics.median(times) * 1000:8.1f} ms   "
                  f"({n} run{'s' if n > 1 else ''})", file=sys.stderr)
    finally:
        await db.dispose()
    return results


async def _time_api(url: str, p: Plan, runs: int) -> list[dict[str, Any]]:
    """The same org report through the REST API (routing, auth, JSON / CSV rendering)."""
    import tempfile

    import httpx

    from clarion.api.app import create_app
    from clarion.bootstrap import build
    from clarion.config import Settings

    with tempfile.TemporaryDirectory() as var:
        container = build(Settings(database_url=url, var_dir=Path(var),
                                   secret_key="bench-reports-secret-key-not-for-production"))
        await container.start()
        try:
            token = (await container.orgs.new_admin_token(p.org_id)).token
            transport = httpx.ASGITransport(app=create_app(container))
            out = []
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as cl:
                for label, extra in (("API org hourly by platform, JSON", {}),
                                     ("API org hourly by platform, CSV", {"format": "csv"})):
                    params = {"since": START.isoformat(),
                              "until": (START + timedelta(days=30)).isoformat(),
                              "granularity": "hour", "by_platform": "true", **extra}
                    times = []
                    size = 0
                    for _ in range(runs):
                        t0 = time.perf_counter()
                        r = await cl.get(f"/v1/orgs/{p.org_id}/reports", params=params,
                                         headers={"authorization": f"Bearer {token}"})
                        times.append(time.perf_counter() - t0)
                        r.raise_for_status()
                        size = len(r.content)
                    p50, p99 = statistics.median(times), _pct(times, 0.99)
                    out.append({"case": label, "p50": p50, "p99": p99, "max": max(times),
                                "bytes": size})
                    print(f"  {label:<44} p50 {p50 * 1000:8.1f} ms   p99 {p99 * 1000:8.1f} ms"
                          f"   {size / 1e6:.1f} MB", file=sys.stderr)
            return out
        finally:
            await container.close()


def _bind(db: Database, at: datetime) -> Any:
    return at.strftime("%Y-%m-%d %H:%M:%S.%f") if db.is_sqlite else at


async def _sizes(url: str) -> dict[str, int]:
    engine = create_async_engine(url)
    out = {}
    async with engine.connect() as conn:
        for table in ("interactions", "report_counters", "report_rollups"):
            out[table] = int((await conn.execute(text(f"SELECT COUNT(*) FROM {table}")))
                             .scalar_one())
    await engine.dispose()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--interactions", type=int, default=10_000_000)
    ap.add_argument("--sends", type=int, default=2000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--apps", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/clarion-bench-reports"))
    ap.add_argument("--pg", help="also build and time on this PostgreSQL server (a database "
                    "clarion_bench_reports is created on it)")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="time the existing build")
    args = ap.parse_args(argv)
    p = plan(args)
    print(f"{args.sends:,} sends over {args.days} days, {args.apps} apps, "
          f"{sum(s.people for s in p.sends):,} people entering, "
          f"target {args.interactions:,} interactions", file=sys.stderr)
    targets: list[tuple[str, str]] = []
    if not args.no_sqlite:
        path = args.dir / f"reports-{args.interactions}.db"
        if not (args.reuse and path.exists()):
            t0 = time.monotonic()
            print(f"building {path}", file=sys.stderr)
            build_sqlite(path, p, args.seed)
            print(f"built in {time.monotonic() - t0:.0f} s", file=sys.stderr)
        targets.append(("SQLite", f"sqlite+aiosqlite:///{path}"))
    if args.pg:
        base = args.pg.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0]
        url = f"{base}/clarion_bench_reports"
        if not args.reuse:
            asyncio.run(_create_pg_db(args.pg))
            t0 = time.monotonic()
            print("building PostgreSQL clarion_bench_reports", file=sys.stderr)
            asyncio.run(build_pg(url, p, args.seed))
            print(f"built in {time.monotonic() - t0:.0f} s", file=sys.stderr)
        targets.append(("PostgreSQL", url))
    print("\n| database | case | p50 ms | p99 ms | buckets |", file=sys.stdout)
    print("|---|---|---:|---:|---:|", file=sys.stdout)
    for name, url in targets:
        sizes = asyncio.run(_sizes(url))
        print(f"{name}: " + ", ".join(f"{k} {v:,} rows" for k, v in sizes.items()),
              file=sys.stderr)
        for r in asyncio.run(time_reports(url, p, args.runs)):
            print(f"| {name} | {r['case']} | {r['p50'] * 1000:.1f} | {r['p99'] * 1000:.1f} | "
                  f"{r.get('buckets', '')} |", flush=True)


async def _create_pg_db(dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute('DROP DATABASE IF EXISTS "clarion_bench_reports" WITH (FORCE)')
        await conn.execute('CREATE DATABASE "clarion_bench_reports"')
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
