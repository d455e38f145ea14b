"""Delivery benchmark: Clarion end to end vs plain aioapns / aiohttp / firebase-admin loops.

    flock /work/bench.lock .venv/bin/python bench/delivery/run.py   # shapes (~36 min, 2 cores)
    .venv/bin/python bench/delivery/run.py --quick    # the same, sizes ÷ 10
    .venv/bin/python bench/delivery/run.py --classic  # + the earlier scenarios (2-5 below)

By default: h2load, three aioapns loops (asyncio, uvloop, jh2 + uvloop) and the audience
shapes of ``shapes.py`` (10k/100k/1M × 1, a 100k mix, 100 × 1,000) on SQLite, and 10k/100k/mix
on PostgreSQL with 1, 2 and 4 workers. With ``--classic``, as before:

Everything runs against one private nginx sink (HTTP/2 + TLS, ``return 200``, pinned to core
0; see ``sink.py``), in one run, side by side:

1. ``h2load`` (C) against the sink: the sink's ceiling, so no sender is capped by it;
2. baselines (``baselines.py``), each in its own process pinned to core 1: aioapns 4.0 (also
   once with the garbage-collector settings ``clarion serve`` applies, and the "2×" target is
   taken against the faster), a plain aiohttp FCM v1 loop, firebase-admin ``send_each_async``;
3. Clarion embedded (``clarion serve``: API + worker + SQLite, pinned to core 1): APNs 20k and
   100k deliveries, FCM 20k, each on a fresh copy of the same world;
4. Clarion's RSS from 10,000 to 1,000,000 deliveries in one process;
5. Clarion on PostgreSQL: 100k APNs deliveries with 1, 2 and 4 ``clarion worker`` processes
   (the API in ``clarion serve --no-worker``).

Results: a Rich table on the terminal, JSON and Markdown in ``bench/results/``. Work files
(databases, logs, nginx prefix) go to ``bench/.work/delivery/`` (both git-ignored). Every
process started here is stopped here, by pid; every PostgreSQL database created is dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.delivery import shapes as S  # noqa: E402
from bench.delivery import world as W  # noqa: E402
from bench.delivery.clarion_runs import ScenarioResult, run_scenario  # noqa: E402
from bench.delivery.procs import pinned  # noqa: E402
from bench.delivery.profile import profile_scenario  # noqa: E402
from bench.delivery.report import markdown, rich_table, targets  # noqa: E402
from bench.delivery.sink import Sink  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import (  # noqa: E402
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

console = Console(width=max(Console().width, 200))
RESULTS = REPO / "bench" / "results"
SINK_CORE = 0
SENDER_CORE = 1


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    pg = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "SHOW server_version"],
        capture_output=True, text=True, check=False).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_mb": mem,
            "os": platform.platform(), "python": platform.python_version(),
            "postgresql": pg or "unknown", "load_at_start": os.getloadavg()}


def h2load_ceiling(sink: Sink, work: Path, n: int) -> dict[str, Any] | None:
    """The sink's ceiling as seen by a C client on the sender core (None without h2load)."""
    binary = shutil.which("h2load")
    if binary is None:
        return None
    payload = work / "apns-payload.json"
    payload.write_text('{"aps":{"alert":{"title":"Benchmark","body":"Your order has shipped."}}}')
    offset = sink.log_offset()
    out = subprocess.run(
        pinned(SENDER_CORE, [binary, "-n", str(n), "-c", "1", "-m", "100", "-d", str(payload),
                             "-H", "apns-id: 0a1b2c3d-0000-0000-0000-000000000000",
                             "-H", "apns-topic: com.bench.app",
                             f"{sink.url}/3/device/{'ab' * 32}"]),
        capture_output=True, text=True, timeout=300, check=False).stdout
    match = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", out)
    ok = re.search(r"(\d+) succeeded", out)
    sl = sink.read_slice(offset)
    if match is None:
        return {"error": out[-500:]}
    return {"kind": "h2load", "n": n, "ok": int(ok.group(1)) if ok else None,
            "seconds": float(match.group(1)), "sends_per_s": float(match.group(2)),
            "sink_requests": sl.requests, "sink_request_time_p99_ms": sl.request_time_p99_ms}


def baseline(kind: str, sink: Sink, work: Path, *, n: int, concurrency: int, uvloop: bool,
             files: dict[str, Path], gc_tuned: bool = False, jh2: bool = False
             ) -> dict[str, Any]:
    out = work / f"baseline-{kind}-{n}-{concurrency}-{int(uvloop)}-{int(gc_tuned)}-{int(jh2)}.json"
    env = dict(os.environ, PYTHONPATH=str(REPO), SSL_CERT_FILE=str(sink.ca_file),
               REQUESTS_CA_BUNDLE=str(sink.ca_file), PYTHONWARNINGS="ignore")
    argv = [sys.executable, "-m", "bench.delivery.baselines", kind, "--url", sink.url,
            "--ca", str(sink.ca_file), "--n", str(n), "--concurrency", str(concurrency),
            "--p8", str(files["p8"]), "--sa", str(files["sa"]), "--out", str(out)]
    if uvloop:
        argv.append("--uvloop")
    if gc_tuned:
        argv.append("--gc-tuned")
    if jh2:
        argv.append("--jh2")
    offset = sink.log_offset()
    proc = subprocess.run(pinned(SENDER_CORE, argv), env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=900, check=False)
    if proc.returncode != 0:
        return {"kind": kind, "error": proc.stderr[-1500:]}
    result: dict[str, Any] = json.loads(out.read_text())
    sl = sink.read_slice(offset)
    result["sink"] = {"requests": sl.requests, "by_status": sl.by_status,
                      "protocols": sl.protocols, "request_time_p50_ms": sl.request_time_p50_ms,
                      "request_time_p99_ms": sl.request_time_p99_ms}
    return result


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quick = args.quick
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.stamp = stamp
        self.work = REPO / "bench" / ".work" / "delivery" / stamp
        self.work.mkdir(parents=True, exist_ok=True)
        self.results: dict[str, Any] = {
            "started": stamp, "quick": self.quick, "machine": machine(),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "pinning": {"sink": f"nginx worker_processes 1 on core {SINK_CORE}",
                        "sender": f"core {SENDER_CORE} (baselines, clarion serve)"},
            "baselines": [], "clarion": [], "notes": []}
        self.pg_dbs: list[str] = []
        self.sink: Sink | None = None
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                                 transient=False)
        self.task = self.progress.add_task("starting", total=None)

    # -- helpers ------------------------------------------------------------------------------

    def status(self, text: str, done: int | None = None, total: int | None = None) -> None:
        self.progress.update(self.task, description=text, completed=done or 0,
                             total=total if total else None)

    def note(self, text: str) -> None:
        self.results["notes"].append(text)
        self.progress.console.print(f"[yellow]note:[/yellow] {text}")

    def save(self) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"delivery-{self.stamp}.json"
        path.write_text(json.dumps(self.results, indent=1, default=str), encoding="utf-8")
        return path

    # -- phases -------------------------------------------------------------------------------

    def run(self) -> None:
        from clarion.emulators.tls import make_pki

        q = self.quick
        classic = self.args.classic
        n_base = 5_000 if q else 20_000
        shapes = S.pick(self.args.shapes, q)
        pg_shapes = [] if self.args.skip_pg else S.pick(self.args.pg_shapes, q)
        groups, heavy = S.groups_for(shapes)
        ios_people = max(heavy, (20 if q else 100) if classic else 0)
        android_people = (5 if q else 20) if classic else 0
        dpp = S.HEAVY_DEVICES
        self.results["sizes"] = {"baseline_n": n_base, "ios_people": ios_people,
                                 "android_people": android_people, "devices_per_person": dpp,
                                 "shapes": [s.__dict__ for s in shapes],
                                 "pg_shapes": [s.__dict__ for s in pg_shapes]}
        pki = make_pki(self.work / "pki")
        self.sink = sink = Sink(self.work, pki.ca_file, pki.cert_file, pki.key_file,
                                core=SINK_CORE)
        if sink.installed:
            self.note("nginx was not installed: the runner installed Debian's package")
        sink.start()
        self.results["sink"] = {"nginx": sink.version, "url": sink.url}
        secret = secrets.token_urlsafe(48)
        base = W.base_env(sink.url, pki.ca_file, secret)
        with self.progress:
            self.status("h2load against the sink (ceiling)")
            self.results["h2load"] = h2load_ceiling(sink, self.work, 50_000 if q else 200_000)

            self.status("building the SQLite world through the product")
            world_dir = self.work / "world-sqlite"
            world = W.build_world(var_dir=world_dir, database_url=None,
                                  plan=W.Plan(ios_people, android_people, dpp, groups),
                                  base=base,
                                  sink_url=sink.url, work=self.work,
                                  on_progress=lambda t, d, n: self.status(t, d, n))
            self.results["world_sqlite"] = world.to_json()
            files = {"p8": self.work / "bench.p8", "sa": self.work / "sa.json"}
            files["p8"].write_text(world.p8)
            files["sa"].write_text(json.dumps(world.sa))

            # aioapns a second time with Clarion's collector settings: the ratio is taken
            # against the faster of the two, so that the GC tuning alone cannot make it.
            # The plain aioapns loop, as many notifications as the 100,000 × 1 shape, in
            # three variants: asyncio (the plain loop), uvloop, uvloop + jh2 for h2.
            n_shape = next((sh.people for sh in S.pick(["100k"], q)), 100_000)
            for variant, uv, jh2 in (("asyncio", False, False), ("uvloop", True, False),
                                     ("jh2-uvloop", True, True)):
                if not shapes:
                    break
                self.status(f"baseline aioapns for the shapes ({n_shape:,} sends, {variant})")
                result = baseline("aioapns", sink, self.work, n=n_shape, concurrency=100,
                                  uvloop=uv, files=files, jh2=jh2)
                self.results["baselines"].append(dict(result, shapes=True, variant=variant))
                self.save()

            for kind, conc, uv, n, gc_tuned in () if not classic else (
                ("aioapns", 100, True, n_base, False),
                ("aioapns", 100, True, n_base, True),
                ("aioapns", 500, False, n_base, False),
                ("clarion-apns-adapter", 2, True, n_base, False),
                ("aiohttp-fcm", 100, True, n_base, False),
                ("clarion-fcm-adapter", 2, True, n_base, False),
                ("firebase-admin", 1, True, n_base, False),
            ):
                self.status(f"baseline {kind} ({n:,} sends, {conc} in flight"
                            f"{', uvloop' if uv else ''}{', GC tuned' if gc_tuned else ''})")
                self.results["baselines"].append(
                    baseline(kind, sink, self.work, n=n, concurrency=conc, uvloop=uv,
                             files=files, gc_tuned=gc_tuned))
                self.save()

            def sqlite(name: str, plan: list[tuple[str, int]],
                       settings: dict[str, str] | None = None) -> ScenarioResult:
                var = W.copy_sqlite(world_dir, self.work / name)
                env = dict(base, CLARION_VAR_DIR=str(var))
                return run_scenario(name=name, mode="sqlite", env=env, world=world, sink=sink,
                                    plan=plan, work=self.work, serve_cores=str(SENDER_CORE),
                                    sqlite_db=var / "clarion.db", settings=settings, timeout=1800.0,
                                    on_tick=lambda s, d, n: self.status(s, d, n))

            for shape in shapes:
                self.results["clarion"].append(self._scenario(
                    lambda sh=shape: sqlite(f"shape-{sh.key}", [S.shot(sh, world)]),
                    shape=shape))
                self.save()

            small = max(1, n_base // dpp)
            big = f"sqlite-apns-{ios_people * dpp // 1000}k"
            for name, plan, settings in () if not classic else (
                (f"sqlite-apns-{small * dpp // 1000}k", [("ios", small)], None),
                (big, [("ios", ios_people)], None),
                # A worker runs CLARION_DELIVERY_JOBS_PER_CALL (4) delivery jobs of 500 per
                # call: the same send with one job per call (the tighter crash bound).
                (f"{big}-jpc1", [("ios", ios_people)], {"CLARION_DELIVERY_JOBS_PER_CALL": "1"}),
                (f"sqlite-fcm-{small * dpp // 1000}k",
                 [("android", min(small, android_people))], None),
            ):
                self.results["clarion"].append(self._scenario(
                    lambda n=name, p=plan, s=settings: sqlite(n, p, s)))
                self.save()

            if classic and not self.args.skip_rss:
                target = self.args.rss_deliveries or (200_000 if q else 1_000_000)
                first = max(1, 10_000 // dpp)
                plan = [("ios", first)]
                total = first * dpp
                while total < target:
                    take = min(ios_people, (target - total + dpp - 1) // dpp)
                    plan.append(("ios", take))
                    total += take * dpp
                self.results["clarion"].append(self._scenario(
                    lambda: sqlite(f"sqlite-rss-{total // 1000}k", plan)))
                self.save()

            if self.args.profile:
                self.status("py-spy profile of clarion serve (separate run)")
                var = W.copy_sqlite(world_dir, self.work / "profile")
                env = dict(base, CLARION_VAR_DIR=str(var))
                self.results["profile"] = profile_scenario(
                    env=env, world=world, sink=sink, work=self.work, people=ios_people,
                    core=SENDER_CORE, out_dir=RESULTS, stamp=self.stamp, sqlite_db=var /
                    "clarion.db")
                self.save()

            if pg_shapes:
                self._pg_shapes(base, pg_shapes)
            if classic and not self.args.skip_pg:
                self._postgres(base, dpp, ios_people)
        sink.stop()

    def _scenario(self, fn: Any, shape: S.Shape | None = None) -> dict[str, Any]:
        try:
            result: ScenarioResult = fn()
        except Exception as exc:
            traceback.print_exc()
            return {"name": "failed", "error": f"{type(exc).__name__}: {exc}"}
        data = result.to_json()
        if shape is not None:
            data.update(shape=shape.key, shape_title=shape.title)
        line = f"{result.name}: {result.deliveries:,} deliveries, {result.rate:,.0f}/s"
        if result.errors:
            line += f" ({len(result.errors)} error lines)"
        self.progress.console.print(line)
        return data

    def _postgres(self, base: dict[str, str], dpp: int, ios_people: int) -> None:
        assert self.sink is not None
        sink = self.sink
        self.status("building the PostgreSQL world through the product")
        template = W.new_pg_name("world")
        url = W.create_pg(template)
        self.pg_dbs.append(template)
        world = W.build_world(var_dir=None, database_url=url,
                              plan=W.Plan(ios_people, 0, dpp), base=base, sink_url=sink.url,
                              work=self.work, on_progress=lambda t, d, n: self.status(t, d, n))
        self.results["world_postgresql"] = world.to_json()
        runs: list[tuple[int, dict[str, str]]] = [(w, {}) for w in self.args.pg_workers]
        # One delivery job per claim, so that a send is shared by every worker process.
        runs += [(w, {"CLARION_WORKER_BATCH_SIZE": "1"}) for w in self.args.pg_wbs1_workers]
        for workers, settings in runs:
            name = f"pg-apns-{ios_people * dpp // 1000}k-{workers}w" + (
                "-wbs1" if settings else "")
            db = W.new_pg_name(f"{workers}w")
            db_url = W.create_pg(db, template=template)
            self.pg_dbs.append(db)
            env = dict(base, CLARION_DATABASE_URL=db_url,
                       CLARION_VAR_DIR=str(self.work / "pg-var"))
            self.results["clarion"].append(self._scenario(lambda n=name, e=env, w=workers,
                                                          u=db_url, s=settings: run_scenario(
                name=n, mode="postgresql", env=e, world=world, sink=sink, settings=s,
                plan=[("ios", ios_people)], work=self.work, workers=w,
                serve_cores=str(SINK_CORE), worker_cores=f"{SINK_CORE},{SENDER_CORE}",
                pg_dsn=u.replace("postgresql+asyncpg://", "postgresql://"),
                on_tick=lambda s, d, n: self.status(s, d, n))))
            self.save()
            W.drop_databases([db])
            self.pg_dbs.remove(db)

    def _pg_shapes(self, base: dict[str, str], shapes: list[S.Shape]) -> None:
        """The shapes on PostgreSQL: ``clarion serve --no-worker`` + N ``clarion worker``,
        a fresh database (``TEMPLATE`` of one world) per shape and worker count."""
        assert self.sink is not None
        sink = self.sink
        self.status("building the PostgreSQL world (shapes) through the product")
        template = W.new_pg_name("shapes")
        url = W.create_pg(template)
        self.pg_dbs.append(template)
        groups, heavy = S.groups_for(shapes)
        world = W.build_world(var_dir=None, database_url=url,
                              plan=W.Plan(heavy, 0, S.HEAVY_DEVICES, groups), base=base,
                              sink_url=sink.url, work=self.work,
                              on_progress=lambda t, d, n: self.status(t, d, n))
        self.results["world_postgresql_shapes"] = world.to_json()
        for shape in shapes:
            for workers in self.args.pg_workers:
                name = f"pg-shape-{shape.key}-{workers}w"
                db = W.new_pg_name(f"{shape.key}{workers}w")
                db_url = W.create_pg(db, template=template)
                self.pg_dbs.append(db)
                env = dict(base, CLARION_DATABASE_URL=db_url,
                           CLARION_VAR_DIR=str(self.work / "pg-var"))
                self.results["clarion"].append(self._scenario(
                    lambda n=name, e=env, w=workers, u=db_url, sh=shape: run_scenario(
                        name=n, mode="postgresql", env=e, world=world, sink=sink,
                        plan=[S.shot(sh, world)], work=self.work, workers=w,
                        serve_cores=str(SINK_CORE), worker_cores=f"{SINK_CORE},{SENDER_CORE}",
                        pg_dsn=u.replace("postgresql+asyncpg://", "postgresql://"),
                        on_tick=lambda s, d, n: self.status(s, d, n)), shape=shape))
                self.save()
                W.drop_databases([db])
                self.pg_dbs.remove(db)

    def cleanup(self) -> None:
        if self.sink is not None:
            self.sink.stop()
        W.drop_databases(self.pg_dbs)
        if not self.args.keep_work:
            shutil.rmtree(self.work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Clarion delivery benchmark (see README.md).")
    parser.add_argument("--quick", action="store_true", help="small sizes (~4 minutes)")
    parser.add_argument("--shapes", nargs="+", choices=S.KEYS, default=S.KEYS,
                        help="audience shapes to run on SQLite (default: all; --quick divides "
                        "the sizes by 10)")
    parser.add_argument("--pg-shapes", nargs="*", choices=S.KEYS, default=S.PG_DEFAULT,
                        help="audience shapes to run on PostgreSQL with each --pg-workers "
                        "count (default: 10k 100k mix)")
    parser.add_argument("--classic", action="store_true",
                        help="also the earlier scenarios: the 20k baselines (FCM too), APNs "
                        "20k/100k/one job per call, FCM 20k, RSS over 11 sends, PostgreSQL "
                        "100 × 1,000")
    parser.add_argument("--skip-pg", action="store_true", help="no PostgreSQL scenarios")
    parser.add_argument("--skip-rss", action="store_true", help="no 10k → 1M RSS scenario")
    parser.add_argument("--rss-deliveries", type=int, default=0,
                        help="deliveries of the RSS scenario (default 1,000,000; quick 200,000)")
    parser.add_argument("--pg-workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--pg-wbs1-workers", type=int, nargs="*", default=[],
                        help="also run these worker counts with CLARION_WORKER_BATCH_SIZE=1 "
                        "(it no longer bounds delivery claims: CLARION_DELIVERY_JOBS_PER_CALL "
                        "does)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile clarion serve with py-spy (a separate run)")
    parser.add_argument("--keep-work", action="store_true",
                        help="keep bench/.work/delivery/<stamp> (databases, logs)")
    args = parser.parse_args()
    bench = Bench(args)
    t0 = time.monotonic()
    try:
        bench.run()
    finally:
        bench.results["wall_s"] = round(time.monotonic() - t0, 1)
        bench.results["targets"] = targets(bench.results)
        bench.results["shape_targets"] = S.targets(bench.results)
        path = bench.save()
        md = path.with_suffix(".md")
        md.write_text(markdown(bench.results) + S.markdown(bench.results), encoding="utf-8")
        bench.cleanup()
    console.print(rich_table(bench.results))
    console.print(S.markdown(bench.results))
    console.print(f"results: {path.relative_to(REPO)} and {md.relative_to(REPO)}")


if __name__ == "__main__":
    main()
