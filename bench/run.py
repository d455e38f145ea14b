"""Clarion registration benchmarks: one command, every scenario side by side in one run.

    .venv/bin/python bench/run.py                 # everything (~6 minutes on 2 cores)
    .venv/bin/python bench/run.py --only ceiling,sqlite-single --duration 5
    .venv/bin/python bench/run.py --markdown      # also print/write the tables as Markdown
    .venv/bin/python bench/run.py --profile       # attach py-spy to the server (perturbs it)
    .venv/bin/python bench/run.py --only sqlite-single,sqlite-single-sync-normal  # FULL's cost

Sets everything up in a temporary directory (SQLite files; PostgreSQL databases created from a
template and dropped at the end), installs wrk with apt-get if it is missing, runs each scenario
bounded in time, tears everything down, prints the tables and writes the raw results to
``bench/results/<timestamp>.json`` (git-ignored). See docs/benchmarks.md.

Speed is measured here, never in the test suite: machines are noisy, so only numbers from one
run, side by side with their baselines, are compared.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clarion_bench import procs, report
from clarion_bench.scenarios import SCENARIOS, Options, run_scenario
from clarion_bench.world import World
from clarion_bench.wrk import ensure_wrk
from rich.console import Console

RESULTS = Path(__file__).resolve().parent / "results"
console = Console(stderr=True)


def _args(argv: list[str] | None) -> argparse.Namespace:
    ids = [s.id for s in SCENARIOS]
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="scenarios: " + ", ".join(ids))
    p.add_argument("--only", help="comma-separated scenario ids (default: all)")
    p.add_argument("--skip-postgres", action="store_true", help="leave out PostgreSQL scenarios")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per wrk run")
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each")
    p.add_argument("--connections", type=int, default=64, help="wrk connections (single)")
    p.add_argument("--batch-connections", type=int, default=16,
                   help="wrk connections for /devices/batch (100 devices each)")
    p.add_argument("--drain-timeout", type=float, default=20.0,
                   help="how long to wait for the worker to finish the backlog after a run")
    p.add_argument("--latency-rate", type=float, default=1000.0, help="registrations/s offered")
    p.add_argument("--latency-seconds", type=float, default=20.0)
    p.add_argument("--poll-ms", type=float, default=50.0, help="status polling interval")
    p.add_argument("--people", type=int, default=1000, help="people registrations spread over")
    p.add_argument("--profile", action="store_true",
                   help="record py-spy profiles of the server during measured runs (needs "
                        "`pip install py-spy`; the numbers of a profiled run are perturbed)")
    p.add_argument("--profile-native", action="store_true",
                   help="with --profile: include C frames (py-spy --native; slower sampling)")
    p.add_argument("--sql-stats", action="store_true",
                   help="run Clarion under bench/clarion_bench/instrumented.py: count and time "
                        "every SQL statement (results/sql-<scenario>.json; adds overhead)")
    p.add_argument("--wait-quiet", type=float, default=20.0,
                   help="before each scenario wait up to this many seconds for both cores to be "
                        "< 15%% busy (other people's processes skew everything)")
    p.add_argument("--nice", type=int, default=0,
                   help="run the server and the load generators under `nice -n N` (e.g. -5 on "
                        "a shared machine, as root, so other jobs steal less of their cores)")
    p.add_argument("--sqlite-synchronous", choices=["normal", "full"], default=None,
                   help="CLARION_SQLITE_SYNCHRONOUS for every SQLite scenario (default: "
                        "Clarion's default, full); the *-sync-normal scenarios always run "
                        "normal, beside the default, to show what full costs")
    p.add_argument("--markdown", action="store_true", help="print the tables as Markdown too")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = p.parse_args(argv)
    chosen = [s.strip() for s in (a.only or ",".join(ids)).split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(ids))
    if unknown:
        p.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(ids)}")
    if a.skip_postgres:
        chosen = [c for c in chosen if not c.startswith("pg-")]
    a.chosen = chosen
    return a


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    scenarios = [s for s in SCENARIOS if s.id in a.chosen]
    opts = Options(duration=a.duration, warmup=a.warmup, connections=a.connections,
                   batch_connections=a.batch_connections, drain_timeout=a.drain_timeout,
                   latency_rate=a.latency_rate, latency_seconds=a.latency_seconds,
                   poll_seconds=a.poll_ms / 1000, profile=a.profile or a.profile_native,
                   sql_stats=a.sql_stats, profile_native=a.profile_native,
                   wait_quiet=a.wait_quiet, sqlite_synchronous=a.sqlite_synchronous)
    procs.NICE = a.nice
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    wrk = ensure_wrk(console.print)
    workdir = Path(tempfile.mkdtemp(prefix="clarion-bench-"))
    console.print(f"work directory: {workdir}")
    world = World(workdir, a.people)
    results: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        kinds = {s.db for s in scenarios if s.db}
        if "sqlite" in kinds:
            console.print(f"setting up SQLite: 1 org, 1 app, {a.people} people (via the CLI)")
            world.build_sqlite({})
        if "postgresql" in kinds:
            console.print("setting up PostgreSQL template database (via the CLI)")
            world.build_postgres({})
        for sc in scenarios:
            console.rule(f"{sc.id}: {sc.title}")
            t0 = time.monotonic()
            try:
                res = run_scenario(sc, world, opts, wrk, workdir, RESULTS, console.print)
            except Exception as exc:  # one broken scenario must not hide the others
                res = {"id": sc.id, "title": sc.title, "db": sc.db or "none", "kind": sc.kind,
                       "error": f"{type(exc).__name__}: {exc}",
                       "traceback": traceback.format_exc()}
                console.print(f"[red]{sc.id} failed: {exc}[/red]")
            res["wall_seconds"] = round(time.monotonic() - t0, 1)
            results.append(res)
    finally:
        leftover = world.teardown()
        if leftover:
            console.print(f"[red]could not drop databases: {', '.join(leftover)}[/red]")
        if not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    doc = {
        "started_at": stamp, "wall_seconds": round(time.monotonic() - started, 1),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": report.machine(), "options": vars(opts) | {"nice": a.nice},
        "people": a.people,
        "scenarios": results, "targets": report.targets(results),
    }
    out = RESULTS / f"{stamp}.json"
    out.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    out_console = Console()
    if not out_console.is_terminal:
        out_console = Console(width=220)
    report.print_tables(out_console, results)
    if a.markdown:
        md = report.markdown(results)
        (RESULTS / f"{stamp}.md").write_text(md, encoding="utf-8")
        print(md)
    console.print(f"results: {out}  ({doc['wall_seconds']:.0f} s)")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
