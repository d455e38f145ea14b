"""Interaction-report ingestion benchmark: `clarion serve` pinned to one core, wrk on another.

    .venv/bin/python bench/events/run.py [--db sqlite|postgresql] [--pairs 5000]
        [--duration 15] [--connections 64] [--profile]

Steps (everything through Clarion's own CLI and REST API, against the running service):

1. ``clarion orgs create``, ``clarion apps create`` (Android only, dry run off),
   ``clarion contacts import`` of N people; ``clarion migrate``.
2. ``taskset -c 0 clarion serve`` with ``CLARION_EVENTS_RATE_PER_CLIENT=0`` (no rate limit);
   provider URLs point at a closed local port, so nothing leaves the machine.
3. N devices registered through the CIJ batch endpoint; one send to the N people; wait until
   the fan-out wrote N deliveries. The N (trackingId, device token) pairs go to a file.
4. A warm-up wrk run, then the measured one (``taskset -c 1 wrk -t1 -c64 -s events.lua``):
   every request is a valid report, statuses cycling Delivered → 1 → 0 → Dismissed per pass
   over the pairs (first passes create first-occurrence rows, later ones are duplicates).
5. Figures: accepted (202) reports/s, latency percentiles, and the ``interactions`` rows the
   measured run added against the 202s wrk counted (they must match: nothing accepted is
   lost; rows may exceed 202s by at most the requests in flight when wrk stopped).

``--profile`` runs ``py-spy record`` on the server during a second measured run and writes a
flame graph (SVG) and py-spy's ``--format raw`` stacks next to the summary.

Results go to ``bench/events/results/<timestamp>-<db>.json``. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PY = sys.executable
CLARION = [PY, "-m", "clarion.cli"]
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CLOSED = "http://127.0.0.1:9"  # discard port: nothing listens, provider calls fail at once


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(core: int | None, argv: list[str]) -> list[str]:
    if core is None or shutil.which("taskset") is None:
        return argv
    return ["taskset", "-c", str(core), *argv]


def cli(args: list[str], env: dict[str, str], cwd: Path) -> Any:
    out = subprocess.run([*CLARION, *args], env=env, cwd=cwd, capture_output=True, text=True,
                         timeout=600, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"clarion {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout) if "--json" in args else out.stdout


def service_account() -> dict[str, Any]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {"type": "service_account", "project_id": "bench-events", "private_key_id": "b1",
            "private_key": pem, "client_email": "push@bench-events.iam.gserviceaccount.com",
            "client_id": "1", "token_uri": f"{CLOSED}/token"}


class Counter:
    """Row counts straight from the database (read-only), for the rows-vs-202s check."""

    def __init__(self, sqlite_path: Path | None, pg_dsn: str | None) -> None:
        self.sqlite_path = sqlite_path
        self.pg_dsn = pg_dsn

    def count(self, sql: str) -> int:
        if self.sqlite_path is not None:
            conn = sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True, timeout=30)
            try:
                return int(conn.execute(sql).fetchone()[0])
            finally:
                conn.close()

        async def go() -> int:
            conn = await asyncpg.connect(self.pg_dsn)
            try:
                return int(await conn.fetchval(sql))
            finally:
                await conn.close()

        return asyncio.run(go())


def ensure_tables(url: str) -> None:
    """Create tables the migration may not have yet (features land in parallel); a no-op once
    the migration is complete."""
    from sqlalchemy import create_engine

    from clarion.store.tables import metadata

    sync_url = url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg2")
    if "postgresql" in sync_url:
        async def go() -> None:
            from sqlalchemy.ext.asyncio import create_async_engine
            engine = create_async_engine(url)
            async with engine.begin() as conn:
                await conn.run_sync(metadata.create_all, checkfirst=True)
            await engine.dispose()
        asyncio.run(go())
        return
    engine = create_engine(sync_url)
    metadata.create_all(engine, checkfirst=True)
    engine.dispose()


def wait_until(what: str, check: Any, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise RuntimeError(f"timed out waiting for {what}")


def run_wrk(args: argparse.Namespace, url: str, env: dict[str, str], out: Path,
            duration: float) -> dict[str, Any]:
    cmd = pinned(args.client_core, [
        "wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{round(duration)}s",
        "--timeout", "10s", "-s", str(HERE / "events.lua"), url])
    done = subprocess.run(cmd, env=env | {"BENCH_OUT": str(out)}, check=False,
                          capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(out.read_text())
    result["command"] = " ".join(cmd)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--pairs", type=int, default=5000)
    p.add_argument("--duration", type=float, default=15.0)
    p.add_argument("--warmup", type=float, default=4.0)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=0,
                   help="reports per request (Clarion's batch form); 0 = one object, as CIJ")
    p.add_argument("--server-core", type=int, default=0)
    p.add_argument("--client-core", type=int, default=1)
    p.add_argument("--profile", action="store_true", help="py-spy the server on a 2nd run")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="clarion-bench-events-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env |= {"CLARION_VAR_DIR": str(work / "var"), "CLARION_PORT": str(port),
            "CLARION_HOST": "127.0.0.1", "CLARION_LOG_LEVEL": "warning",
            "CLARION_SECRET_KEY": secrets.token_urlsafe(48),
            "CLARION_EVENTS_RATE_PER_CLIENT": "0",
            "CLARION_FCM_URL": CLOSED, "CLARION_APNS_URL": CLOSED,
            "CLARION_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    pg_db = None
    if args.db == "postgresql":
        pg_db = f"clarion_bench_events_{secrets.token_hex(4)}"

        async def create() -> None:
            conn = await asyncpg.connect(PG_ADMIN)
            await conn.execute(f'CREATE DATABASE "{pg_db}"')
            await conn.close()

        asyncio.run(create())
        env["CLARION_DATABASE_URL"] = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{pg_db}"
        counter = Counter(None, f"postgresql://postgres@127.0.0.1:5432/{pg_db}")
        url = env["CLARION_DATABASE_URL"]
    else:
        counter = Counter(work / "var" / "clarion.db", None)
        url = f"sqlite+aiosqlite:///{work / 'var' / 'clarion.db'}"
    server: subprocess.Popen[bytes] | None = None
    try:
        print(f"work dir {work}; preparing {args.pairs} pairs on {args.db}")
        cli(["migrate"], env, work)
        ensure_tables(url)
        org = cli(["orgs", "create", "--name", "Bench events", "--json"], env, work)
        (work / "app.json").write_text(json.dumps({
            "name": "Bench events", "android": {"service_account": service_account()},
            "settings": {"dry_run_on_register": False}}))
        app = cli(["apps", "create", "--org", org["id"], "--config", str(work / "app.json"),
                   "--json"], env, work)
        people = [str(uuid.uuid4()) for _ in range(args.pairs)]
        (work / "people.csv").write_text("id,email\n" + "".join(
            f"{pid},p{i}@bench.example\n" for i, pid in enumerate(people)))
        cli(["contacts", "import", "--org", org["id"], str(work / "people.csv"), "--json"],
            env, work)

        log = (work / "serve.log").open("wb")
        server = subprocess.Popen(pinned(args.server_core, [*CLARION, "serve"]), env=env,
                                  cwd=work, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        def up() -> bool:
            if server is not None and server.poll() is not None:
                raise RuntimeError("clarion serve exited:\n" + (work / "serve.log").read_text())
            return _healthy(base)

        wait_until("the service", up, timeout=60)

        tokens = [f"bench-{i}-{secrets.token_hex(40)}" for i in range(args.pairs)]
        admin = {"authorization": f"Bearer {org['admin_token']}"}
        with httpx.Client(base_url=base, timeout=60) as http:
            for i in range(0, args.pairs, 100):
                batch = [{"MobileAppId": app["id"], "ApiToken": app["api_token"],
                          "UserId": people[j], "FcmDeviceToken": tokens[j]}
                         for j in range(i, min(i + 100, args.pairs))]
                r = http.post(f"/api/v1.0/orgs/{org['id']}/pushdeviceregistration/devices/batch",
                              json=batch)
                r.raise_for_status()
            wait_until("device registrations", lambda: counter.count(
                "SELECT count(*) FROM devices") >= args.pairs)
            send_id = ""
            for i in range(0, args.pairs, 100_000):
                r = http.post(f"/v1/orgs/{org['id']}/sends", headers=admin, json={
                    "app_id": app["id"], "user_ids": people[i:i + 100_000],
                    # ttl 0: deliveries end at their first attempt (no provider is reachable),
                    # so no delivery retries run beside the measurement.
                    "message": {"title": "Bench", "body": "events", "ttl": 0,
                                "link": "https://example.com/offer"}})
                r.raise_for_status()
                send_id = r.json()["id"]
            wait_until("the fan-out and delivery attempts", lambda: counter.count(
                "SELECT count(*) FROM deliveries WHERE state != 'pending'") >= args.pairs)
        pairs_file = work / "pairs.txt"
        pairs_file.write_text("".join(f"{send_id} {tok}\n" for tok in tokens))
        (work / "env.json").write_text(json.dumps(  # to re-run by hand with --keep
            {"env": {k: v for k, v in env.items() if k.startswith("CLARION_")},
             "org_id": org["id"], "send_id": send_id}))

        target = f"{base}/api/v1.0/orgs/{org['id']}/pushdatareceiver/events"
        wrk_env = env | {"BENCH_PATH": f"/api/v1.0/orgs/{org['id']}/pushdatareceiver/events",
                         "BENCH_PAIRS": str(pairs_file), "BENCH_BATCH": str(args.batch)}
        print("warm-up …")
        run_wrk(args, target, wrk_env, work / "warmup.json", args.warmup)
        wait_until("the warm-up's reports to be recorded",
                   lambda: counter.count(RECORD_JOBS_SQL) == 0)
        time.sleep(1.0)
        rows_sql = "SELECT count(*) FROM interactions"
        before = counter.count(rows_sql)
        print(f"measured run: {args.duration:.0f} s, {args.connections} connections …")
        cpu_before = thread_cpu(server.pid)
        result = run_wrk(args, target, wrk_env, work / "run.json", args.duration)
        cpu = {name: round(t - cpu_before.get(name, 0.0), 2)
               for name, t in thread_cpu(server.pid).items()}
        cpu_total = sum(cpu.values())
        # Accepted reports are committed in their record jobs; the worker records them (it
        # yields to the API under load, then catches up): wait for that, timed.
        drain_started = time.monotonic()
        waiting_at_end = counter.count(RECORD_ITEMS_SQL[args.db])
        wait_until("the accepted reports to be recorded",
                   lambda: counter.count(RECORD_JOBS_SQL) == 0)
        drain_s = time.monotonic() - drain_started
        drain_cpu = sum(thread_cpu(server.pid).values()) - sum(cpu_before.values()) - cpu_total
        after = counter.count(rows_sql)
        per_request = max(args.batch, 1)
        accepted = int(result["statuses"].get("202", 0)) * per_request
        seconds = result["duration_us"] / 1e6
        summary: dict[str, Any] = {
            "db": args.db, "pairs": args.pairs, "connections": args.connections,
            "threads": args.threads, "reports_per_request": per_request,
            "duration_s": round(seconds, 2),
            "accepted": accepted, "accepted_per_s": round(accepted / seconds),
            "requests_per_s": round(result["requests"] / seconds),
            "server_cpu_us_per_report": None,
            "statuses": result["statuses"], "errors": result["errors"],
            "latency_ms": {k: round(v / 1000, 2) for k, v in result["latency_us"].items()},
            "server_cpu_s": {"total": round(cpu_total, 2),
                             **dict(sorted(cpu.items(), key=lambda kv: -kv[1])[:8])},
            "recorded_per_s_sustained": round((after - before) / (seconds + drain_s)),
            "reports_waiting_at_end": waiting_at_end,
            "drain_s": round(drain_s, 2),
            "server_cpu_us_per_report_incl_recording": round(
                1e6 * (cpu_total + drain_cpu) / max(after - before, 1), 1),
            "rows_added": after - before, "rows_minus_202": after - before - accepted,
            "event_jobs_waiting": counter.count(
                "SELECT count(*) FROM jobs WHERE kind = 'events.interaction'"),
            "server": " ".join(pinned(args.server_core, ["clarion", "serve"])),
            "wrk": result["command"],
        }
        summary["server_cpu_us_per_report"] = round(1e6 * cpu_total / max(accepted, 1), 1)
        if args.profile:
            summary["profile"] = _profile(args, server.pid, target, wrk_env, work)
        out_dir = HERE / "results"
        out_dir.mkdir(exist_ok=True)
        tag = f"{args.db}-batch{args.batch}" if args.batch else args.db
        out = out_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{tag}.json"
        out.write_text(json.dumps(summary, indent=2))
        print(json.dumps(summary, indent=2))
        print(f"written to {out}")
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=40)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
        if pg_db is not None:
            async def drop() -> None:
                conn = await asyncpg.connect(PG_ADMIN)
                await conn.execute(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
                await conn.close()

            asyncio.run(drop())
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


RECORD_JOBS_SQL = "SELECT count(*) FROM jobs WHERE kind = 'interactions.record'"
RECORD_ITEMS_SQL = {  # reports accepted but not recorded yet
    "sqlite": "SELECT coalesce(sum(json_array_length(payload, '$.ids')), 0) FROM jobs "
              "WHERE kind = 'interactions.record'",
    "postgresql": "SELECT coalesce(sum(json_array_length((payload::json) -> 'ids')), 0) "
                  "FROM jobs WHERE kind = 'interactions.record'"}


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) per thread of ``pid``, from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            stat = (task / "stat").read_text()
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            key = f"{name}:{task.name}"
            out[key] = (int(fields[11]) + int(fields[12])) / tick
    return out


def _healthy(base: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    return False


def _profile(args: argparse.Namespace, pid: int, target: str, env: dict[str, str],
             work: Path) -> dict[str, Any]:
    """py-spy (collapsed stacks) on the server during one more run; returns where time goes."""
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    raw = out_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{args.db}-pyspy.txt"
    seconds = int(args.duration)
    py_spy = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
    spy = subprocess.Popen(pinned(args.client_core, [
        py_spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "100",
        "--threads", "--format", "raw", "--output", str(raw)]),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    result = run_wrk(args, target, env, work / "profiled.json", seconds)
    _, err = spy.communicate(timeout=120)
    if not raw.exists():
        raise RuntimeError(f"py-spy wrote nothing: {err.decode(errors='replace')}")
    return {"stacks": str(raw), "top": summarise_stacks(raw),
            "accepted_per_s_while_profiled": round(
                int(result["statuses"].get("202", 0)) * max(args.batch, 1)
            / (result["duration_us"] / 1e6))}


_AREAS: list[tuple[str, Any]] = [  # first match wins: every sample lands in one area
    ("worker (job claims, event dispatch)", lambda st, leaf: "clarion/worker/" in st),
    ("group commit: SQLAlchemy + driver", lambda st, leaf: "group_commit.py" in st and any(
        d in st for d in ("sqlalchemy/", "aiosqlite/", "asyncpg/"))),
    ("group commit: recording in Python", lambda st, leaf: "group_commit.py" in st),
    # Statements run in SQLAlchemy's greenlets, whose stacks start at the greenlet: nearly all
    # of them are the group commit's (lookups are answered from the cache once warm).
    ("SQLAlchemy inside greenlets (the group commit's statements)",
     lambda st, leaf: "sqlalchemy/" in st and "_BatchedLookup" not in st),
    ("lookup queries", lambda st, leaf: "_BatchedLookup" in st and "sqlalchemy/" in st),
    ("request: parse, checks, submit", lambda st, leaf: "clarion/api/" in st),
    ("uvicorn HTTP (httptools, ASGI cycle)", lambda st, leaf: "uvicorn/" in st),
    ("event loop + socket I/O (uvloop, incl. polling)",
     lambda st, leaf: leaf.startswith("Runner.run")),
]


def summarise_stacks(raw: Path, top: int = 20) -> dict[str, Any]:
    """Where the server's main thread spends its samples (exclusive areas), its hottest
    innermost frames, and how busy the other threads were (py-spy counts a thread blocked in
    a C-level queue wait as active, so idle database threads show up as busy)."""
    areas: dict[str, int] = {name: 0 for name, _ in _AREAS} | {"other": 0}
    leaves: dict[str, int] = {}
    threads: dict[str, int] = {}
    main = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, n_text = line.rpartition(" ")
        if not n_text.isdigit():
            continue
        n = int(n_text)
        frames = stack.split(";")
        threads[frames[0][:70]] = threads.get(frames[0][:70], 0) + n
        if "MainThread" not in frames[0]:
            continue
        main += n
        leaf = frames[-1]
        leaves[leaf] = leaves.get(leaf, 0) + n
        for name, test in _AREAS:
            if test(stack, leaf):
                areas[name] += n
                break
        else:
            areas["other"] += n

    def pct(v: int, total: int) -> float:
        return round(100 * v / total, 1) if total else 0.0

    return {"main_thread_samples": main,
            "main_thread_pct": {k: pct(v, main) for k, v in areas.items()},
            "main_thread_hottest": [(k, pct(v, main)) for k, v in
                                    sorted(leaves.items(), key=lambda kv: -kv[1])[:top]],
            "samples_per_thread": dict(sorted(threads.items(), key=lambda kv: -kv[1]))}


if __name__ == "__main__":
    main()
