"""Clarion scenarios: start Clarion on a copy of the world, send, wait for every outcome.

A scenario is one set of Clarion processes (embedded: one ``clarion serve``; PostgreSQL:
``clarion serve --no-worker`` for the API plus N ``clarion worker``) and a sequence of sends,
each POSTed when the previous one is done. Per send: the time from the POST to the moment the
send reads ``done`` (every delivery row has its outcome), polled through the API once per
``poll`` seconds, and the exact end (the last delivery row's ``updated_at``) read from the
database afterwards. The RSS of Clarion's processes is sampled every 0.5 s throughout.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from bench.delivery.histogram import LogHistogram
from bench.delivery.procs import (
    HOST,
    Proc,
    RssSampler,
    cpu_of,
    cpu_seconds,
    start,
)
from bench.delivery.sink import Sink
from bench.delivery.world import PY, REPO, World, serve

MESSAGE = {"title": "Benchmark", "body": "Your order has shipped."}


@dataclass
class SendOutcome:
    platform: str
    people: int
    deliveries: int
    counts: dict[str, int]
    post_to_done_s: float  # as a poller sees it (resolution: the poll interval)
    post_to_last_row_s: float | None  # exact: the last delivery row's updated_at
    rss_after_mb: float
    cumulative: int
    # From the sink's log: first and last provider request, seconds after the POST.
    first_request_s: float | None = None
    last_request_s: float | None = None
    posts: int = 1  # sends POSTed at once for this audience (> 1: an audience over 100,000)
    post_answer_s: float | None = None  # POST → the last 202 answered
    label: str = ""

    @property
    def rate(self) -> float:
        secs = self.post_to_last_row_s or self.post_to_done_s
        return self.deliveries / secs if secs else 0.0

    @property
    def all_accepted(self) -> bool:
        return self.counts.get("accepted", 0) == self.deliveries


@dataclass
class ScenarioResult:
    name: str
    mode: str  # sqlite | postgresql
    workers: int
    cores: str
    sends: list[SendOutcome]
    rss_peak_mb: float
    rss_start_mb: float
    rss_marks: dict[str, float]
    rss_samples: list[tuple[float, float]]
    latency: dict[str, Any]
    sink: dict[str, Any]
    cpu_s: dict[str, float]
    wall_s: float
    errors: list[str] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)  # non-default CLARION_* settings
    processes: dict[str, dict[str, float]] = field(default_factory=dict)  # cpu_s, peak RSS

    @property
    def deliveries(self) -> int:
        return sum(s.deliveries for s in self.sends)

    @property
    def busy_s(self) -> float:
        return sum((s.post_to_last_row_s or s.post_to_done_s) for s in self.sends)

    @property
    def rate(self) -> float:
        return self.deliveries / self.busy_s if self.busy_s else 0.0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["deliveries"] = self.deliveries
        out["sends_per_s"] = round(self.rate, 1)
        out["busy_s"] = round(self.busy_s, 3)
        for s, raw in zip(self.sends, out["sends"], strict=True):
            raw["sends_per_s"] = round(s.rate, 1)
            raw["all_accepted"] = s.all_accepted
        # keep the JSON readable: at most ~400 RSS samples
        step = max(1, len(self.rss_samples) // 400)
        out["rss_samples"] = [(round(t, 1), round(mb, 1)) for t, mb in self.rss_samples[::step]]
        return out


def _pg_cpu(dsn: str | None) -> dict[int, float]:
    """CPU seconds, now, of the PostgreSQL backends serving this scenario's database (other
    databases on the same server are not counted; WAL writer and checkpointer are not either).
    Backends are keyed by pid: Clarion's pools keep theirs for the whole run."""
    if dsn is None:
        return {}
    database = dsn.rsplit("/", 1)[-1]

    async def q() -> list[int]:
        conn = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres")
        try:
            rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1",
                                    database)
            return [int(r[0]) for r in rows]
        finally:
            await conn.close()

    out = {}
    for pid in asyncio.run(q()):
        value = cpu_seconds(pid)
        if value is not None:
            out[pid] = value
    return out


def _parse_ts(value: Any) -> float:
    dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def last_row_time(send_id: str, *, sqlite_db: Path | None, pg_dsn: str | None) -> float | None:
    """Epoch seconds of the send's last delivery update (the moment its last outcome was
    written; the commit follows within the same transaction)."""
    sql = "SELECT max(updated_at) FROM deliveries WHERE send_id = "
    if sqlite_db is not None:
        with sqlite3.connect(f"file:{sqlite_db}?mode=ro", uri=True) as db:
            row = db.execute(sql + "?", (send_id,)).fetchone()
        return None if row is None or row[0] is None else _parse_ts(row[0])
    assert pg_dsn is not None

    async def q() -> Any:
        conn = await asyncpg.connect(pg_dsn)
        try:
            return await conn.fetchval(sql + "$1", send_id)
        finally:
            await conn.close()

    value = asyncio.run(q())
    return None if value is None else _parse_ts(value)


async def _send_and_wait(port: int, world: World, people: list[str], *, poll: float,
                         limit_s: float, on_tick: Callable[[int, int], None],
                         expected: int) -> tuple[str, float, float, dict[str, int]]:
    base = f"http://{HOST}:{port}/v1/orgs/{world.org_id}/sends"
    headers = {"authorization": f"Bearer {world.admin_token}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        t_post_wall = time.time()
        t_post = time.monotonic()
        async with session.post(base, json={"app_id": world.app_id, "user_ids": people,
                                            "message": MESSAGE}, headers=headers) as resp:
            body = await resp.json()
            if resp.status != 202:
                raise RuntimeError(f"POST /sends answered {resp.status}: {body}")
        send_id = body["id"]
        deadline = t_post + limit_s
        while True:
            await asyncio.sleep(poll)
            async with session.get(f"{base}/{send_id}", params={"limit": "1"},
                                   headers=headers) as resp:
                doc = await resp.json()
            counts = doc.get("counts", {})
            decided = sum(n for state, n in counts.items() if state != "pending")
            on_tick(decided, expected)
            if doc.get("state") == "done":
                return send_id, t_post_wall, time.monotonic() - t_post, counts
            if time.monotonic() > deadline:
                raise RuntimeError(f"send {send_id} not done after {limit_s:.0f} s: {doc}")


@dataclass
class Shot:
    """One audience: ``parts`` are POSTed one after another, each as soon as the previous one
    is answered, as a client with a large audience does (one send each, at most 100,000 people
    per send, the API's bound); the shot is done when every send is."""

    label: str
    parts: list[list[str]]
    expected: int  # deliveries (devices of the audience)
    platform: str = "ios"
    # Or one send to a segment with this filter (created before the clock starts): ``parts``
    # then holds its members, for the figures only.
    segment_filter: str | None = None

    @property
    def people(self) -> int:
        return sum(len(p) for p in self.parts)


async def _send_status(send_ids: list[str], done: set[str], *, sqlite_db: Path | None,
                       pg_dsn: str | None) -> None:
    """Add to ``done`` the sends fanned out with no pending delivery left. Read from the
    database, not the API: ``GET …/sends/{id}`` returns the send's ``user_ids`` (100,000 ids)
    and serialising them once a second would cost the measured process its CPU."""
    todo = [s for s in send_ids if s not in done]
    state_sql = "SELECT state FROM sends WHERE id = "
    pending_sql = "SELECT 1 FROM deliveries WHERE state = 'pending' AND send_id = "
    if sqlite_db is not None:
        with sqlite3.connect(f"file:{sqlite_db}?mode=ro", uri=True, timeout=30) as db:
            for sid in todo:
                row = db.execute(state_sql + "?", (sid,)).fetchone()
                if row and row[0] == "fanned_out" and db.execute(
                        pending_sql + "? LIMIT 1", (sid,)).fetchone() is None:
                    done.add(sid)
        return
    assert pg_dsn is not None
    conn = await asyncpg.connect(pg_dsn)
    try:
        for sid in todo:
            if await conn.fetchval(state_sql + "$1", sid) == "fanned_out" and \
                    await conn.fetchval(pending_sql + "$1 LIMIT 1", sid) is None:
                done.add(sid)
    finally:
        await conn.close()


def _counts(send_id: str, *, sqlite_db: Path | None, pg_dsn: str | None) -> dict[str, int]:
    sql = "SELECT state, count(*) FROM deliveries WHERE send_id = "
    if sqlite_db is not None:
        with sqlite3.connect(f"file:{sqlite_db}?mode=ro", uri=True, timeout=30) as db:
            return {r[0]: int(r[1]) for r in db.execute(sql + "? GROUP BY state", (send_id,))}
    assert pg_dsn is not None

    async def q() -> dict[str, int]:
        conn = await asyncpg.connect(pg_dsn)
        try:
            return {r[0]: int(r[1]) for r in await conn.fetch(sql + "$1 GROUP BY state",
                                                              send_id)}
        finally:
            await conn.close()

    return asyncio.run(q())


async def _shoot(port: int, world: World, shot: Shot, *, poll: float, limit_s: float,
                 sqlite_db: Path | None, pg_dsn: str | None,
                 on_tick: Callable[[int, int], None]) -> tuple[list[str], float, float, float]:
    """POST the shot's sends one after another; (send ids, wall time of the first POST,
    POST → last 202, POST → all done as polled)."""
    base = f"http://{HOST}:{port}/v1/orgs/{world.org_id}/sends"
    headers = {"authorization": f"Bearer {world.admin_token}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
        if shot.segment_filter is None:
            bodies = [json.dumps({"app_id": world.app_id, "user_ids": part,
                                  "message": MESSAGE}).encode() for part in shot.parts]
        else:
            async with session.post(f"http://{HOST}:{port}/v1/orgs/{world.org_id}/segments",
                                    json={"name": shot.label, "filter": shot.segment_filter},
                                    headers=headers) as resp:
                doc = await resp.json()
                if resp.status != 201:
                    raise RuntimeError(f"POST /segments answered {resp.status}: {doc}")
            bodies = [json.dumps({"app_id": world.app_id, "segment_id": doc["id"],
                                  "message": MESSAGE}).encode()]

        async def post(body: bytes) -> str:
            async with session.post(base, data=body, headers={
                    **headers, "content-type": "application/json"}) as resp:
                doc = await resp.json()
                if resp.status != 202:
                    raise RuntimeError(f"POST /sends answered {resp.status}: {doc}")
                return str(doc["id"])

        t_post_wall = time.time()
        t_post = time.monotonic()
        send_ids = [await post(b) for b in bodies]
        answered = time.monotonic() - t_post
    done: set[str] = set()
    deadline = t_post + limit_s
    while True:
        await asyncio.sleep(poll)
        await _send_status(send_ids, done, sqlite_db=sqlite_db, pg_dsn=pg_dsn)
        on_tick(len(done), len(send_ids))
        if len(done) == len(send_ids):
            return send_ids, t_post_wall, answered, time.monotonic() - t_post
        if time.monotonic() > deadline:
            raise RuntimeError(f"sends {sorted(set(send_ids) - done)} not done after "
                               f"{limit_s:.0f} s")


def run_scenario(*, name: str, mode: str, env: dict[str, str], world: World, sink: Sink,
                 plan: list[tuple[str, int]] | list[Shot], work: Path, workers: int = 0,
                 serve_cores: str = "1", worker_cores: str = "1",
                 sqlite_db: Path | None = None, pg_dsn: str | None = None,
                 poll: float = 1.0, timeout: float = 900.0,
                 on_tick: Callable[[str, int, int], None] = lambda *_: None,
                 attach: Callable[[list[int]], Callable[[], None]] | None = None,
                 launcher: bool = True,
                 settings: dict[str, str] | None = None) -> ScenarioResult:
    """Run ``plan`` (a list of (platform, people) sends, or of ``Shot``s: audiences given
    explicitly, possibly several sends at once) against fresh Clarion processes.

    ``workers == 0``: embedded (``clarion serve`` with its worker). Otherwise the API runs in
    ``clarion serve --no-worker`` and ``workers`` × ``clarion worker`` do the sending.
    ``attach`` (e.g. a profiler) is called with the pids once they run and returns its stop
    function. ``launcher=False`` runs the plain CLI (no latency timing). ``settings`` are extra
    ``CLARION_*`` variables for this scenario only (recorded with the result).
    """
    settings = dict(settings or {})
    env = {**env, **settings}
    logs = work / "logs"
    latency_files: list[Path] = []
    procs: list[Proc] = []
    senv = dict(env)
    senv["BENCH_LATENCY_OUT"] = str(logs / f"{name}-serve-latency.json")
    latency_files.append(Path(senv["BENCH_LATENCY_OUT"]))
    api, port = serve(senv, logs / f"{name}-serve.log", cores=serve_cores,
                      worker=workers == 0, launcher=launcher)
    procs.append(api)
    for i in range(workers):
        wenv = dict(env)
        wenv["BENCH_LATENCY_OUT"] = str(logs / f"{name}-worker{i}-latency.json")
        latency_files.append(Path(wenv["BENCH_LATENCY_OUT"]))
        module = "bench.delivery.launch" if launcher else "clarion.cli"
        procs.append(start(f"worker{i}", [PY, "-m", module, "worker"],
                           env=wenv, log=logs / f"{name}-worker{i}.log", cwd=REPO,
                           cores=worker_cores))
    time.sleep(1.5 if workers else 0.3)  # workers: let them connect and start polling
    for p in procs:
        if not p.alive():
            raise RuntimeError(f"{p.name} exited at start:\n{p.tail()}")
    sampler = RssSampler([p.pid for p in procs]).start()
    rss_start = sampler.mark("start")
    pids = [p.pid for p in procs]
    pg0 = _pg_cpu(pg_dsn) if mode == "postgresql" else {}
    cpu0 = (cpu_of(pids), cpu_of(sink.pids()))
    proc_cpu0 = {p.name: cpu_seconds(p.pid) or 0.0 for p in procs}
    detach = attach([p.pid for p in procs]) if attach is not None else None
    offset = sink.log_offset()
    t0 = time.monotonic()
    sends: list[SendOutcome] = []
    cumulative = 0
    errors: list[str] = []
    try:
        for step in plan:
            if isinstance(step, Shot):
                send_offset = sink.log_offset()
                send_ids, t_post_wall, answered, secs = asyncio.run(_shoot(
                    port, world, step, poll=poll, limit_s=timeout, sqlite_db=sqlite_db,
                    pg_dsn=pg_dsn, on_tick=lambda d, e, lb=step.label: on_tick(
                        f"{name}: {lb} (sends done)", d, e)))
                counts: dict[str, int] = {}
                lasts = []
                for sid in send_ids:
                    for state, k in _counts(sid, sqlite_db=sqlite_db, pg_dsn=pg_dsn).items():
                        counts[state] = counts.get(state, 0) + k
                    lasts.append(last_row_time(sid, sqlite_db=sqlite_db, pg_dsn=pg_dsn))
                n = sum(counts.values())
                cumulative += n
                window = sink.read_slice(send_offset)
                last = max((x for x in lasts if x is not None), default=None)
                sends.append(SendOutcome(
                    platform=step.platform, people=step.people, deliveries=n, counts=counts,
                    post_to_done_s=round(secs, 3),
                    post_to_last_row_s=None if last is None else round(last - t_post_wall, 3),
                    rss_after_mb=round(sampler.mark(f"after {cumulative:,}"), 1),
                    cumulative=cumulative,
                    first_request_s=None if window.first_msec is None else
                    round(window.first_msec - t_post_wall, 3),
                    last_request_s=None if window.last_msec is None else
                    round(window.last_msec - t_post_wall, 3),
                    posts=len(send_ids), post_answer_s=round(answered, 3), label=step.label))
                if n != step.expected:
                    errors.append(f"{step.label}: {n} deliveries, {step.expected} expected")
                continue
            platform, n_people = step
            pool = world.ios_people if platform == "ios" else world.android_people
            if n_people > len(pool):
                raise RuntimeError(f"the world has {len(pool)} {platform} people, {n_people} "
                                   "asked")
            expected = n_people * world.devices_per_person
            send_offset = sink.log_offset()
            send_id, t_post_wall, secs, counts = asyncio.run(_send_and_wait(
                port, world, pool[:n_people], poll=poll, limit_s=timeout, expected=expected,
                on_tick=lambda d, e, c=cumulative: on_tick(name, c + d, c + e)))
            last = last_row_time(send_id, sqlite_db=sqlite_db, pg_dsn=pg_dsn)
            n = sum(counts.values())
            cumulative += n
            window = sink.read_slice(send_offset)
            sends.append(SendOutcome(
                platform=platform, people=n_people, deliveries=n, counts=counts,
                post_to_done_s=round(secs, 3),
                post_to_last_row_s=None if last is None else round(last - t_post_wall, 3),
                rss_after_mb=round(sampler.mark(f"after {cumulative:,}"), 1),
                cumulative=cumulative,
                first_request_s=None if window.first_msec is None else
                round(window.first_msec - t_post_wall, 3),
                last_request_s=None if window.last_msec is None else
                round(window.last_msec - t_post_wall, 3)))
            if n != expected:
                errors.append(f"{platform} send: {n} deliveries, {expected} expected")
    finally:
        wall = time.monotonic() - t0
        cpu1 = (cpu_of(pids), cpu_of(sink.pids()))
        processes = {p.name: {"cpu_s": round((cpu_seconds(p.pid) or 0.0) - proc_cpu0[p.name], 2),
                              "peak_rss_mb": round(sampler.peaks.get(p.pid, 0.0), 1)}
                     for p in procs}
        pg1 = _pg_cpu(pg_dsn) if mode == "postgresql" else {}
        sampler.stop()
        if detach is not None:
            detach()
        for p in reversed(procs):
            p.stop()
        for p in procs:
            errors += [f"{p.name}: {line}" for line in p.errors()[:20]]
    sl = sink.read_slice(offset)
    hists = {"apns": LogHistogram(), "fcm": LogHistogram()}
    for f in latency_files:
        if f.exists():
            for key, part in json.loads(f.read_text()).items():
                hists[key].merge(LogHistogram.from_json(part))
    return ScenarioResult(
        name=name, mode=mode, workers=workers,
        cores=f"serve: {serve_cores}" + (f", workers: {worker_cores}" if workers else ""),
        sends=sends, rss_peak_mb=round(sampler.peak, 1), rss_start_mb=round(rss_start, 1),
        rss_marks={k: round(v, 1) for k, v in sampler.marks.items()},
        rss_samples=sampler.samples,
        latency={k: h.summary() for k, h in hists.items() if h.count},
        sink={"requests": sl.requests, "by_status": sl.by_status, "protocols": sl.protocols,
              "span_s": sl.span_s, "request_time_p50_ms": sl.request_time_p50_ms,
              "request_time_p99_ms": sl.request_time_p99_ms},
        cpu_s={"clarion": round(cpu1[0] - cpu0[0], 2), "nginx": round(cpu1[1] - cpu0[1], 2),
               "postgres": round(sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items()), 2)},
        wall_s=round(wall, 2), errors=errors, settings=settings, processes=processes)
