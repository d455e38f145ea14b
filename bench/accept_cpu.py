"""CPU per accepted device registration, in process, A/B across trees and settings.

    .venv/bin/python bench/accept_cpu.py before=/work/base/src after=src \\
        normal=src:CLARION_SQLITE_SYNCHRONOUS=normal --rounds 5

The network benchmark (``bench/run.py``) measures what a client sees, but on a shared 2-vCPU
VM its rates move by a third between runs. This one removes the network and the load
generator: each variant's own ``clarion.bootstrap.build`` and ``create_app`` run in a fresh
process pinned to one core, and ``--requests`` single CIJ registrations (untracked, one FCM
token each, as ``bench/wrk/register.lua`` sends them) go through the raw ASGI callable from
``--concurrency`` tasks: the same fast path, group commit and SQLite commits as in
``clarion serve``, without the worker (the accept path only). The figure is the process's CPU
time (user + system, every thread) per accepted request, from ``getrusage``.

Each variant is ``label=SRC[:NAME=VALUE,...]`` (as in ``bench/delivery/ab.py``): ``clarion``
imported from ``SRC`` through ``PYTHONPATH`` with extra environment variables. Every distinct
``SRC`` gets its own world (org, app, people) built by its own CLI and migrations. A round runs
every variant once, rotating the order; the table gives the median and the minimum per variant
(noise only ever adds CPU, so the minimum is the steadier figure). Results go to
``bench/results/accept-cpu-<stamp>.json``.

``--instructions`` counts instructions instead of timing (valgrind's cachegrind, no cache
simulation; ``apt-get install valgrind``): each variant runs twice, with ``--requests`` / 4 and
``--requests`` requests, and the difference of the two totals over the difference of requests
is the instructions per request, start-up and warm-up cancelled out. It does not move with the
machine's load, so it tells a change of work from a change of the machine; it cannot see waits
(a disk sync, an idle core waking up). With ``--concurrency 1`` every request is its own commit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from clarion_bench.variants import parse_variant  # noqa: E402
from clarion_bench.world import World  # noqa: E402

RESULTS = HERE / "results"


# ----------------------------------------------------------------------------- one measurement

async def _drive(ids: dict[str, Any], requests: int, concurrency: int,
                 tune: Callable[[], None]) -> dict[str, Any]:
    from clarion.api.app import create_app
    from clarion.bootstrap import build
    from clarion.config import Settings

    container = build(Settings())
    await container.start()
    app = create_app(container)
    path = f"/api/v1.0/orgs/{ids['org_id']}/pushdeviceregistration/devices"
    head = (f'{{"MobileAppId":"{ids["app_id"]}","ApiToken":"{ids["api_token"]}",'
            '"UserId":"').encode()
    users = [u.encode() for u in ids["user_ids"]]
    pad = b"x" * 120
    counter = 0
    statuses: dict[int, int] = {}

    async def one() -> None:
        nonlocal counter
        counter += 1
        body = (head + users[counter % len(users)] + b'","FcmDeviceToken":"t-%08x:' % counter
                + pad + b'"}')
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
                 "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
                 "server": ("127.0.0.1", 8000),
                 "headers": [(b"host", b"127.0.0.1:8000"),
                             (b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode())]}
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.Event().wait()  # nobody disconnects
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        await app(scope, receive, send)

    async def client(n: int) -> None:
        for _ in range(n):
            await one()

    await asyncio.gather(*(client(50) for _ in range(concurrency)))  # warm-up
    tune()
    statuses.clear()
    per_client = requests // concurrency
    commits = _commits()
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    await asyncio.gather(*(client(per_client) for _ in range(concurrency)))
    after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - started
    await container.close()
    done = per_client * concurrency
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return {"cpu_us": 1e6 * (user + system) / done, "user_us": 1e6 * user / done,
            "sys_us": 1e6 * system / done, "req_per_s": done / wall, "statuses": statuses,
            "commits": _commits() - commits}


def _commits() -> int:
    """Group commits so far: each one enqueued one ``registration.process`` job (no worker
    runs here, so none is gone)."""
    path = Path(os.environ["CLARION_VAR_DIR"]) / "clarion.db"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM jobs "
                                "WHERE kind = 'registration.process'").fetchone()[0])


def _child(args: argparse.Namespace) -> None:
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    try:  # as ``clarion serve`` does once started (the module moved between versions)
        from clarion.gc_policy import tune_for_service
    except ImportError:
        from clarion.cli.gc_policy import tune_for_service  # type: ignore[no-redef]
    from clarion.config import Settings
    ids = json.loads(Path(args.ids).read_text(encoding="utf-8"))
    gc_threshold = Settings().gc_threshold
    print(json.dumps(asyncio.run(_drive(ids, args.requests, args.concurrency,
                                        lambda: tune_for_service(gc_threshold)))))


# ----------------------------------------------------------------------------- the A/B

def _world(src: str, directory: Path, people: int) -> tuple[World, dict[str, Any]]:
    os.environ["BENCH_CLARION_SRC"] = src  # World's CLI calls run this tree's code
    world = World(directory, people)
    world.build_sqlite({**os.environ})
    ids = world.ids["sqlite"]
    return world, {"org_id": ids.org_id, "app_id": ids.app_id, "api_token": ids.api_token,
                   "user_ids": ids.user_ids}


def _run_child(world: World, src: str, env: dict[str, str], ids_file: Path, name: str,
               args: argparse.Namespace, requests: int,
               wrap: list[str]) -> tuple[dict[str, Any], str]:
    db, _ = world.fresh("sqlite", name)
    pin = ["taskset", "-c", str(args.core)] if shutil.which("taskset") else []
    proc = subprocess.run(
        [*pin, *wrap, sys.executable, __file__, "--child", "--ids", str(ids_file),
         "--requests", str(requests), "--concurrency", str(args.concurrency)],
        env={**os.environ, "PYTHONPATH": src, "CLARION_LOG_LEVEL": "warning", **db.env, **env},
        capture_output=True, text=True, timeout=3600, check=False)
    shutil.rmtree(db.env["CLARION_VAR_DIR"], ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if set(result["statuses"]) != {"202"}:  # JSON keys
        raise SystemExit(f"{name}: not every request was accepted: {result['statuses']}")
    return result, proc.stderr


def _measure(world: World, src: str, env: dict[str, str], ids_file: Path, name: str,
             args: argparse.Namespace) -> dict[str, Any]:
    if not args.instructions:
        return _run_child(world, src, env, ids_file, name, args, args.requests, [])[0]
    counts, commits = [], []
    sizes = (args.requests // 4, args.requests)
    for requests in sizes:
        grind = ["valgrind", "--tool=cachegrind", "--cache-sim=no",
                 "--cachegrind-out-file=/dev/null"]
        result, log = _run_child(world, src, env, ids_file, name, args, requests, grind)
        commits.append(result["commits"])
        found = re.search(r"I\s+refs:\s+([\d,]+)", log)
        if found is None:
            raise SystemExit(f"{name}: no instruction count in valgrind's output:\n{log[-2000:]}")
        counts.append(int(found[1].replace(",", "")))
    done = [n // args.concurrency * args.concurrency for n in sizes]
    return {"instructions": (counts[1] - counts[0]) / (done[1] - done[0]), "totals": counts,
            "requests_per_commit": (done[1] - done[0]) / max(1, commits[1] - commits[0])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="*", help="label=SRC[:NAME=VALUE,...]")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=30_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--core", type=int, default=0, help="the core every run is pinned to")
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions per request under valgrind instead of timing")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ids", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    variants = ([parse_variant(v) for v in args.variants]
                or [("current", str(HERE.parent / "src"), {})])
    directory = Path(tempfile.mkdtemp(prefix="clarion-accept-cpu-"))
    try:
        worlds: dict[str, tuple[World, Path]] = {}
        for _, src, _ in variants:
            if src not in worlds:
                where = directory / f"world-{len(worlds)}"
                where.mkdir()
                world, ids = _world(src, where, args.people)
                ids_file = where / "ids.json"
                ids_file.write_text(json.dumps(ids), encoding="utf-8")
                worlds[src] = (world, ids_file)
        runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in variants}
        for r in range(args.rounds):
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            for label, src, env in order:
                world, ids_file = worlds[src]
                result = _measure(world, src, env, ids_file, f"{label}-{r}", args)
                runs[label].append(result)
                if args.instructions:
                    print(f"round {r + 1}: {label:<12} {result['instructions']:,.0f} "
                          f"instructions/request ({result['requests_per_commit']:.1f} "
                          "requests per commit)", flush=True)
                    continue
                done = args.requests // args.concurrency * args.concurrency
                print(f"round {r + 1}: {label:<12} {result['cpu_us']:6.1f} µs CPU/request "
                      f"(user {result['user_us']:.1f}, system {result['sys_us']:.1f}), "
                      f"{result['req_per_s']:,.0f} req/s, "
                      f"{done / max(1, result['commits']):.1f} requests per commit",
                      flush=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(f"\n{args.requests:,} single registrations per run, {args.concurrency} in flight, "
          f"{args.rounds} rounds\n")
    if args.instructions:
        print("| variant | instructions per request (median) |")
        print("|---|---|")
        for label, results in runs.items():
            count = statistics.median(x["instructions"] for x in results)
            print(f"| {label} | {count:,.0f} |")
    else:
        print("| variant | median µs CPU/request | min | median req/s (one core) |")
        print("|---|---|---|---|")
    for label, results in ([] if args.instructions else runs.items()):
        cpu = [x["cpu_us"] for x in results]
        rate = statistics.median(x["req_per_s"] for x in results)
        print(f"| {label} | {statistics.median(cpu):.1f} | {min(cpu):.1f} | {rate:,.0f} |")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"accept-cpu-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps({"args": vars(args), "variants": variants, "runs": runs},
                              indent=1), encoding="utf-8")
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
