"""The scenarios and how each one runs: start the server, load it, count, stop.

Server on core 0 (``taskset -c 0``), load generator on core 1. PostgreSQL itself is not
pinned (it is a system service): its backends run on either core, so in PostgreSQL mode the
server process has core 0 to itself but the database competes with the load generator.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from clarion_bench import procs
from clarion_bench.profile import summarize
from clarion_bench.world import Db, Ids, World
from clarion_bench.wrk import Load, run_wrk

BENCH_DIR = Path(__file__).resolve().parents[1]
SERVER_CORE = 0
CLIENT_CORE = 1
REG_PATH = "/api/v1.0/orgs/{org}/pushdeviceregistration/devices"


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    db: str | None  # None: the framework-ceiling app (no database)
    kind: str = "wrk"  # wrk | latency
    batch: int = 0  # 0: POST /devices; n: POST /devices/batch with n items
    env: dict[str, str] = field(default_factory=dict)
    serve_args: tuple[str, ...] = ()
    note: str = ""


# Without a worker nothing is processed, so a long run could reach the default backlog cap
# (CLARION_MAX_BACKLOG, 1,000,000 accepted requests) and measure refusals; a cap this high keeps
# the same code path (the cap is still checked) without ever refusing.
_UNCAPPED = {"CLARION_MAX_BACKLOG": "1000000000"}

SCENARIOS: list[Scenario] = [
    Scenario("ceiling", "Framework ceiling: plain FastAPI 202, no work", None,
             note="bench/clarion_bench/hello_app.py under uvicorn (uvloop, httptools, 1 worker)"),
    Scenario("sqlite-single", "Single registration, SQLite, group commit ON", "sqlite",
             note="clarion serve (API + worker in one process)"),
    Scenario("sqlite-single-share1", "Single registration, SQLite, worker never yields",
             "sqlite", env={"CLARION_WORKER_SHARE_UNDER_LOAD": "1"},
             note="clarion serve with CLARION_WORKER_SHARE_UNDER_LOAD=1: processing keeps pace "
                  "with accepting (sustained rate)"),
    Scenario("sqlite-single-gc-off", "Single registration, SQLite, group commit OFF", "sqlite",
             env={"CLARION_GROUP_COMMIT_MAX_ROWS": "1"},
             note="baseline: one transaction per request"),
    Scenario("sqlite-single-api-only", "Single registration, SQLite, API only (diagnostic)",
             "sqlite", serve_args=("--no-worker",), env=_UNCAPPED,
             note="clarion serve --no-worker: the accept path without the in-process worker"),
    Scenario("sqlite-single-sync-normal", "Single registration, SQLite, synchronous=NORMAL",
             "sqlite", env={"CLARION_SQLITE_SYNCHRONOUS": "normal"},
             note="sqlite-single without a sync to disk per commit: the difference is what the "
                  "default (FULL: a 202 survives a power loss) costs"),
    Scenario("sqlite-batch", "Batch of 100, SQLite, group commit ON", "sqlite", batch=100),
    Scenario("sqlite-batch-sync-normal", "Batch of 100, SQLite, synchronous=NORMAL", "sqlite",
             batch=100, env={"CLARION_SQLITE_SYNCHRONOUS": "normal"},
             note="sqlite-batch without a sync to disk per commit (see sqlite-single-sync-normal)"),
    Scenario("sqlite-batch-share1", "Batch of 100, SQLite, worker never yields", "sqlite",
             batch=100, env={"CLARION_WORKER_SHARE_UNDER_LOAD": "1"},
             note="CLARION_WORKER_SHARE_UNDER_LOAD=1: processing keeps pace (sustained rate)"),
    Scenario("sqlite-batch-api-only", "Batch of 100, SQLite, API only (diagnostic)", "sqlite",
             batch=100, serve_args=("--no-worker",), env=_UNCAPPED,
             note="clarion serve --no-worker: the batch accept path without the worker"),
    Scenario("pg-single", "Single registration, PostgreSQL, group commit ON", "postgresql"),
    Scenario("pg-batch", "Batch of 100, PostgreSQL, group commit ON", "postgresql", batch=100),
    Scenario("sqlite-latency", "202 → Success latency at a fixed rate, SQLite", "sqlite",
             kind="latency"),
    Scenario("pg-latency", "202 → Success latency at a fixed rate, PostgreSQL", "postgresql",
             kind="latency"),
]


@dataclass
class Options:
    duration: float
    warmup: float
    connections: int
    batch_connections: int
    drain_timeout: float
    latency_rate: float
    latency_seconds: float
    poll_seconds: float
    profile: bool
    sql_stats: bool = False
    profile_native: bool = False
    wait_quiet: float = 15.0
    log_level: str = "warning"
    sqlite_synchronous: str | None = None  # CLARION_SQLITE_SYNCHRONOUS; None: Clarion's default


def _python() -> str:
    return sys.executable


def _start_server(
    sc: Scenario, db: Db | None, workdir: Path, port: int, sql_stats: Path | None,
) -> procs.Proc:
    # BENCH_CLARION_SRC=<another checkout>/src runs that tree's Clarion instead (A/B runs).
    src = os.environ.get("BENCH_CLARION_SRC")
    env = {"CLARION_LOG_LEVEL": "warning",
           "PYTHONPATH": os.pathsep.join([*([src] if src else []), str(BENCH_DIR)])}
    if sc.db is None:
        argv = [_python(), "-m", "uvicorn", "clarion_bench.hello_app:app", "--host", procs.HOST,
                "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--workers", "1",
                "--no-access-log", "--log-level", "warning"]
        proc = procs.start(sc.id, argv, env=env, core=SERVER_CORE, log_dir=workdir,
                           cwd=BENCH_DIR)
        procs.wait_http(proc, f"http://{procs.HOST}:{port}/", ok=(404,))
        return proc
    assert db is not None
    module = "clarion.cli"
    if sql_stats is not None:
        module = "clarion_bench.instrumented"
        env["BENCH_SQL_STATS"] = str(sql_stats)
    argv = [_python(), "-m", module, "serve", "--host", procs.HOST, "--port", str(port),
            *sc.serve_args]
    proc = procs.start(sc.id, argv, env=env | db.env | sc.env, core=SERVER_CORE,
                       log_dir=workdir, cwd=workdir)
    procs.wait_http(proc, f"http://{procs.HOST}:{port}/healthz")
    return proc


def _py_spy() -> str | None:
    return shutil.which("py-spy") or shutil.which(str(Path(sys.executable).parent / "py-spy"))


def _start_profile(
    proc: procs.Proc, seconds: float, out: Path, *, native: bool,
) -> subprocess.Popen[bytes] | None:
    spy = _py_spy()
    if spy is None:
        return None
    return subprocess.Popen(
        [spy, "record", "-p", str(proc.pid), "-d", str(max(1, round(seconds))), "-r", "100",
         "-f", "raw", "-o", str(out), "--threads", *(["--native"] if native else [])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_scenario(
    sc: Scenario, world: World | None, opts: Options, wrk: str, workdir: Path,
    results_dir: Path, say: Callable[[str], None],
) -> dict[str, Any]:
    """Run one scenario end to end; always stops the server it started."""
    if (opts.sqlite_synchronous and sc.db == "sqlite"
            and "CLARION_SQLITE_SYNCHRONOUS" not in sc.env):
        sc = replace(sc, env={**sc.env, "CLARION_SQLITE_SYNCHRONOUS": opts.sqlite_synchronous})
    db: Db | None = None
    ids: Ids | None = None
    if sc.db is not None:
        assert world is not None
        db, ids = world.fresh(sc.db, sc.id)
    background = procs.wait_quiet(opts.wait_quiet)
    if max(background.values(), default=0) >= 15.0:
        say(f"  [yellow]the machine is busy before we start (cores {background} % busy): "
            "these numbers will be low and noisy[/yellow]")
    port = procs.free_port()
    sql_stats = results_dir / f"sql-{sc.id}.json" if opts.sql_stats and sc.db else None
    proc = _start_server(sc, db, workdir, port, sql_stats)
    result: dict[str, Any] = {"id": sc.id, "title": sc.title, "db": sc.db or "none",
                              "kind": sc.kind, "batch": sc.batch, "note": sc.note,
                              "env": sc.env, "serve_args": list(sc.serve_args),
                              "loadavg_before": os.getloadavg(),
                              "background_busy_pct_before": background}
    try:
        if sc.kind == "wrk":
            result |= _run_wrk(sc, db, ids, opts, wrk, workdir, results_dir, proc, port, say)
        else:
            assert ids is not None
            assert db is not None
            result |= _run_latency(sc, ids, opts, workdir, port, proc.pid, say)
    finally:
        result["server_exit_code"] = proc.stop()
        result["server_log"] = proc.log_problems()
        if sql_stats is not None and sql_stats.exists():
            result["sql_stats"] = _sql_summary(sql_stats)
    if db is not None and "--no-worker" in sc.serve_args and result.get("backlog_at_end"):
        result["drain"] = _drain_backlog(sc, db, opts, workdir, say)
    if db is not None:
        final = db.counts()
        result["db_final"] = final
        if "accepted_items_total" in result:
            # Exact once drained (pending 0); while a job runs, the devices it already
            # stored are also still counted in pending (an over-count, flagged below).
            stored = final["devices"] + final["pending"]
            result["counted_while_backlog"] = final["pending"]
            result["stored"] = stored
            result["lost"] = max(0, result["accepted_items_total"] - stored)
            # accepted and stored, but the worker gave up on them (dead-lettered jobs): they
            # stay Pending for ever unless someone runs `clarion jobs retry`
            result["stuck_pending"] = final["pending"] if final["jobs_dead"] else 0
            result["unanswered_but_stored"] = max(0, stored - result["accepted_items_total"])
    return result


def _run_wrk(
    sc: Scenario, db: Db | None, ids: Ids | None, opts: Options, wrk: str, workdir: Path,
    results_dir: Path, proc: procs.Proc, port: int, say: Callable[[str], None],
) -> dict[str, Any]:
    if ids is not None:
        org, app_id, token, users = ids.org_id, ids.app_id, ids.api_token, ids.users_file
    else:  # the ceiling app ignores the body; same shape, placeholder values
        org = app_id = "00000000-0000-4000-8000-000000000000"
        token, users = "clr_app_placeholder", workdir / "ceiling-users.txt"
        users.write_text(app_id + "\n", encoding="utf-8")
    path = REG_PATH.format(org=org) + ("/batch" if sc.batch else "")
    load = Load(path, app_id, token, users, sc.batch)
    conns = opts.batch_connections if sc.batch else opts.connections
    say(f"  warm-up {opts.warmup:g} s")
    warm = run_wrk(wrk, port, load, seconds=opts.warmup, connections=conns, core=CLIENT_CORE,
                   out_dir=workdir, label=f"{sc.id}-warmup")
    meter = procs.CoreMeter()
    spy = None
    if opts.profile and sc.db is not None:
        spy = _start_profile(proc, opts.duration, results_dir / f"profile-{sc.id}.txt",
                             native=opts.profile_native)
    say(f"  measuring {opts.duration:g} s ({conns} connections)")
    meter.start()
    cpu0 = procs.cpu_seconds(proc.pid)
    measured = run_wrk(wrk, port, load, seconds=opts.duration, connections=conns,
                       core=CLIENT_CORE, out_dir=workdir, label=sc.id)
    server_cpu = procs.cpu_seconds(proc.pid) - cpu0
    cores = meter.stop()
    out: dict[str, Any] = {"connections": conns, "warmup": warm, "measured": measured,
                           "core_busy_pct": cores,
                           "server_cpu_pct": round(100 * server_cpu / opts.duration, 1)}
    # Core 0 is the server's; whatever else ran there (PostgreSQL, other people's processes)
    out["other_cpu_on_core0_pct"] = round(max(0.0, cores.get("cpu0", 0.0)
                                              - out["server_cpu_pct"]), 1)
    if spy is not None:
        spy.wait(timeout=opts.duration + 60)
        prof = results_dir / f"profile-{sc.id}.txt"
        if prof.exists():
            out["profile"] = {"file": prof.name, **summarize(prof, top=30)}
    out["accepted_items_total"] = warm["accepted_items"] + measured["accepted_items"]
    if db is not None:
        at_end = db.counts()
        out["backlog_at_end"] = at_end["pending"]
        if "--no-worker" in sc.serve_args:
            out["drain_seconds"] = None  # nothing drains without a worker
        else:
            say(f"  waiting for the worker to drain {at_end['pending']} pending "
                f"(≤ {opts.drain_timeout:g} s)")
            t0 = time.monotonic()
            counts = at_end
            while counts["pending"] and time.monotonic() - t0 < opts.drain_timeout:
                time.sleep(0.25)
                counts = db.counts()
            took = time.monotonic() - t0
            out["drain_seconds"] = round(took, 2) if not counts["pending"] else None
            out["pending_after_drain_wait"] = counts["pending"]
            # Processed = devices added: every benchmark token is new and succeeds. (Pending
            # counts fall in steps: a running job's requests count until the job completes.)
            if took > 0.5 and counts["devices"] > at_end["devices"]:
                out["worker_drain_per_s"] = round((counts["devices"] - at_end["devices"]) / took)
    return out


def _drain_backlog(
    sc: Scenario, db: Db, opts: Options, workdir: Path, say: Callable[[str], None],
) -> dict[str, Any]:
    """After an API-only run: start `clarion serve` with its worker on the backlog the API
    accepted and time how fast the worker processes it (no load on the API meanwhile)."""
    backlog = db.counts()["pending"]
    say(f"  draining the {backlog:,} accepted requests with the worker on (≤ "
        f"{max(opts.drain_timeout, 120):g} s)")
    port = procs.free_port()
    drained = replace(sc, id=f"{sc.id}-drain", serve_args=())
    proc = _start_server(drained, db, workdir, port, None)
    try:
        cpu0 = procs.cpu_seconds(proc.pid)
        t0 = time.monotonic()
        counts = db.counts()
        at_start = counts["pending"]
        devices_at_start = counts["devices"]
        while counts["pending"] and time.monotonic() - t0 < max(opts.drain_timeout, 120):
            time.sleep(0.25)
            counts = db.counts()
        took = time.monotonic() - t0
        cpu = procs.cpu_seconds(proc.pid) - cpu0
    finally:
        proc.stop()
    done = counts["devices"] - devices_at_start  # every benchmark token is new and succeeds
    return {"backlog": backlog, "processed_before_timing": backlog - at_start,
            "processed": done, "seconds": round(took, 2),
            "per_s": round(done / took) if took else None,
            "per_server_cpu_s": round(done / cpu) if cpu else None,
            "left_pending": counts["pending"]}


def _run_latency(
    sc: Scenario, ids: Ids, opts: Options, workdir: Path, port: int, server_pid: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    def probe(label: str, seconds: float, settle: float) -> dict[str, Any]:
        cfg = workdir / f"latency-{sc.id}-{label}.json"
        out = workdir / f"latency-{sc.id}-{label}-out.json"
        cfg.write_text(json.dumps({
            "port": port, "org_id": ids.org_id, "app_id": ids.app_id, "api_token": ids.api_token,
            "user_ids": ids.user_ids, "rate": opts.latency_rate, "seconds": seconds,
            "poll_seconds": opts.poll_seconds, "settle_seconds": settle, "connections": 64,
            "prefix": f"{sc.id}-{label}",
        }), encoding="utf-8")
        argv = procs.pinned(CLIENT_CORE, [_python(), "-m", "clarion_bench.latency", str(cfg),
                                          str(out)])
        done = subprocess.run(argv, cwd=BENCH_DIR, capture_output=True, text=True,
                              timeout=seconds + settle + 120, check=False,
                              env={**os.environ, "PYTHONPATH": str(BENCH_DIR)})
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"latency probe failed:\n{done.stdout}\n{done.stderr}")
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return result

    say(f"  warm-up {opts.warmup:g} s at {opts.latency_rate:g}/s")
    warm = probe("warmup", opts.warmup, 5.0)
    say(f"  measuring {opts.latency_seconds:g} s at {opts.latency_rate:g}/s, "
        f"polling every {opts.poll_seconds * 1000:g} ms")
    meter = procs.CoreMeter()
    meter.start()
    cpu0 = procs.cpu_seconds(server_pid)
    started = time.monotonic()
    measured = probe("measured", opts.latency_seconds, 15.0)
    took = time.monotonic() - started
    cores = meter.stop()
    server_cpu = round(100 * (procs.cpu_seconds(server_pid) - cpu0) / took, 1)
    return {"warmup": warm, "measured": measured, "core_busy_pct": cores,
            "server_cpu_pct": server_cpu,
            "other_cpu_on_core0_pct": round(max(0.0, cores.get("cpu0", 0.0) - server_cpu), 1)}


def _sql_summary(path: Path, top: int = 15) -> dict[str, Any]:
    rows: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return {"file": path.name, "executions": sum(r["executions"] for r in rows),
            "seconds": round(sum(r["seconds"] for r in rows), 2), "top": rows[:top]}
