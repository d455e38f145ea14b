"""The data every Clarion scenario starts from, built through the product as an operator would.

One org (``clarion orgs create``), one app with iOS token auth (a fresh P-256 .p8) and Android
(a service account whose ``token_uri`` is the sink's ``/token``), people imported from a CSV
(``clarion contacts import``), and devices registered through CIJ's batch endpoint
(``POST …/pushdeviceregistration/devices/batch``, 100 per request) against a running
``clarion serve``, which validates and stores them (``dry_run_on_register`` is off: the sink
would accept anything anyway). Every person holds ``devices_per_person`` devices of one
platform, so a send to k iOS people is exactly k × devices_per_person APNs deliveries.

The world is built once per database kind and copied for every scenario (SQLite: the var
directory; PostgreSQL: ``CREATE DATABASE … TEMPLATE``), so every scenario starts from the same
fresh database. Every PostgreSQL database created here is dropped by ``drop_databases``.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import random
import secrets
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from bench.delivery.procs import HOST, Proc, free_port, start, wait_port
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
BUNDLE = "com.bench.app"
KEY_ID = "ABC123DEFG"
TEAM_ID = "DEF123GHIJ"
PROJECT = "bench-push"


def p8_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def service_account(token_uri: str) -> dict[str, Any]:
    """A well-formed service account (real RSA key, fake account) whose token endpoint is the
    sink (as tests/factories.py builds it)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {
        "type": "service_account", "project_id": PROJECT, "private_key_id": "bench1",
        "private_key": pem, "client_email": f"push@{PROJECT}.iam.gserviceaccount.com",
        "client_id": "1234567890", "token_uri": token_uri,
    }


def fcm_token() -> str:
    """Shaped like an FCM registration token (~163 characters)."""
    return f"{secrets.token_urlsafe(16)}:APA91b{secrets.token_urlsafe(110)}"


MIX_SEED = 12  # the mixed audience is the same in every run


def mix_devices(people: int, seed: int = MIX_SEED) -> list[int]:
    """Devices per person of a realistic audience: ~30 % none, 50 % one, 20 % two or three
    (half each), drawn from a fixed seed so that every run (and both databases) send to the
    same audience."""
    rng = random.Random(seed)
    out = []
    for _ in range(people):
        r = rng.random()
        out.append(0 if r < 0.3 else 1 if r < 0.8 else 2 if r < 0.9 else 3)
    return out


@dataclass
class Group:
    """Extra iOS people of the world (audience shapes): ``devices`` per person, or the mix
    (``devices is None``: ``mix_devices``)."""

    name: str
    people: int
    devices: int | None = 1

    def per_person(self) -> list[int]:
        return mix_devices(self.people) if self.devices is None else [self.devices] * self.people


@dataclass
class Plan:
    ios_people: int
    android_people: int
    devices_per_person: int
    groups: list[Group] = field(default_factory=list)


@dataclass
class World:
    """What a scenario needs to know about the data (ids and the credentials)."""

    org_id: str
    admin_token: str
    app_id: str
    api_token: str
    ios_people: list[str]
    android_people: list[str]
    devices_per_person: int
    p8: str
    sa: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)
    devices: dict[str, int] = field(default_factory=dict)
    # Audience shapes: a group's people (iOS) and the number of devices of each.
    groups: dict[str, list[str]] = field(default_factory=dict)
    group_devices: dict[str, list[int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"org_id": self.org_id, "app_id": self.app_id,
                "ios_people": len(self.ios_people), "android_people": len(self.android_people),
                "devices_per_person": self.devices_per_person, "devices": self.devices,
                "groups": {name: {"people": len(people),
                                  "devices": sum(self.group_devices[name])}
                           for name, people in self.groups.items()},
                "setup_seconds": self.seconds}


def base_env(sink_url: str, ca_file: Path, secret_key: str) -> dict[str, str]:
    """Settings shared by every Clarion process of the benchmark."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env.update({
        "CLARION_ENV_FILE": "/nonexistent-clarion-bench.env",  # ignore ./clarion.env
        "CLARION_APNS_URL": sink_url,
        "CLARION_FCM_URL": sink_url,
        "CLARION_CA_FILE": str(ca_file),
        "CLARION_RATE_APNS": "1e9",
        "CLARION_RATE_FCM": "1e9",
        "CLARION_LOG_LEVEL": "warning",
        "CLARION_SECRET_KEY": secret_key,
        "CLARION_WEBHOOK_ALLOW_PRIVATE": "false",
        "PYTHONPATH": str(REPO),
    })
    return env


def clarion_json(args: list[str], env: dict[str, str]) -> Any:
    proc = subprocess.run([PY, "-m", "clarion.cli", *args, "--json"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"clarion {' '.join(args)} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def serve(env: dict[str, str], log: Path, *, cores: int | str | None = None,
          worker: bool = True, launcher: bool = True) -> tuple[Proc, int]:
    """``clarion serve`` on a free port (through the latency-recording launcher by default)."""
    port = free_port()
    module = "bench.delivery.launch" if launcher else "clarion.cli"
    argv = [PY, "-m", module, "serve", "--host", HOST, "--port", str(port)]
    if not worker:
        argv.append("--no-worker")
    proc = start("serve", argv, env=env, log=log, cwd=REPO, cores=cores)
    if not wait_port(port, timeout=90):
        proc.stop()
        raise RuntimeError(f"clarion serve did not start:\n{proc.tail()}")
    return proc, port


def jobs_idle(env: dict[str, str]) -> tuple[bool, dict[str, int]]:
    counts = clarion_json(["jobs", "counts"], env)
    if isinstance(counts, dict) and "counts" in counts:
        counts = counts["counts"]
    return counts.get("queued", 0) == 0 and counts.get("running", 0) == 0, counts


Registration = tuple[str, str, str]  # (person, CIJ token field, token)


def _bodies(world: World, items: Iterator[Registration]) -> Iterator[bytes]:
    """Request bodies of 100 registrations each, built as they are sent (a 1,000,000-device
    world would otherwise hold ~250 MB of bodies), across people: one device per person is
    the common shape."""
    batch: list[dict[str, str]] = []
    for person, fld, token in items:
        batch.append({"MobileAppId": world.app_id, "UserId": person,
                      "ApiToken": world.api_token, fld: token})
        if len(batch) == 100:
            yield json.dumps(batch).encode()
            batch = []
    if batch:
        yield json.dumps(batch).encode()


async def _register(port: int, world: World, items: Iterator[Registration],
                    on_progress: Callable[[int], None], concurrency: int = 8) -> None:
    """Register every (person, token) through CIJ's batch endpoint, 100 per request."""
    url = (f"http://{HOST}:{port}/api/v1.0/orgs/{world.org_id}/pushdeviceregistration/"
           "devices/batch")
    bodies = _bodies(world, items)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def worker() -> None:
            for body in bodies:  # one shared generator: each body goes to one worker
                attempt = 0
                deadline = time.monotonic() + 1800
                while True:
                    async with session.post(url, data=body, headers={
                            "content-type": "application/json"}) as resp:
                        text = await resp.text()
                        if resp.status == 202:
                            break
                        # 503 "overloaded": the backlog of accepted registrations is full
                        # (CLARION_MAX_BACKLOG); wait as told while the worker stores them.
                        if resp.status == 503 and time.monotonic() < deadline:
                            await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
                            continue
                        attempt += 1
                        if attempt == 5 or resp.status < 500:
                            raise RuntimeError(f"registration answered {resp.status}: "
                                               f"{text[:500]}")
                    await asyncio.sleep(1)
                on_progress(body.count(b'"MobileAppId"'))

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def build_world(*, var_dir: Path | None, database_url: str | None, plan: Plan,
                base: dict[str, str], sink_url: str, work: Path,
                on_progress: Callable[[str, int, int], None]) -> World:
    """Create org, app, people and devices through the product; return the ids."""
    env = dict(base)
    if var_dir is not None:
        env["CLARION_VAR_DIR"] = str(var_dir)
        var_dir.mkdir(parents=True, exist_ok=True)
    if database_url:
        env["CLARION_DATABASE_URL"] = database_url
        env["CLARION_VAR_DIR"] = str(work / "pg-var")
    # Batches of 100 registrations are the unit of work: let the worker take many at once.
    env.setdefault("CLARION_WORKER_CONCURRENCY", "8")
    seconds: dict[str, float] = {}
    t0 = time.monotonic()
    org = clarion_json(["orgs", "create", "--name", "Bench"], env)
    p8 = p8_key()
    sa = service_account(f"{sink_url}/token")
    app_doc = {
        "name": "Bench",
        "ios": {"auth": "token", "signing_key": p8, "key_id": KEY_ID, "team_id": TEAM_ID,
                "bundle_id": BUNDLE, "environment": "production"},
        "android": {"service_account": sa},
        "settings": {"dry_run_on_register": False,
                     "max_devices_per_person": max(plan.devices_per_person, 3)},
    }
    app_file = work / "app.json"
    app_file.write_text(json.dumps(app_doc), encoding="utf-8")
    app = clarion_json(["apps", "create", "--org", org["id"], "--config", str(app_file)], env)
    app_file.unlink()
    app_id = app.get("id") or app.get("app", {}).get("id")
    api_token = app.get("api_token") or app.get("token")
    if not app_id or not api_token:
        raise RuntimeError(f"unexpected `clarion apps create --json` output: {app}")
    ios = [str(uuid.uuid4()) for _ in range(plan.ios_people)]
    android = [str(uuid.uuid4()) for _ in range(plan.android_people)]
    groups = {g.name: [str(uuid.uuid4()) for _ in range(g.people)] for g in plan.groups}
    group_devices = {g.name: g.per_person() for g in plan.groups}
    people_csv = work / "people.csv"
    with people_csv.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        # ``cohort`` (an attribute): which group a person is in, for segment sends.
        w.writerow(["id", "email", "cohort"])
        everyone = [*((p, "ios") for p in ios), *((p, "android") for p in android),
                    *((p, name) for name, people in groups.items() for p in people)]
        for i, (pid, cohort) in enumerate(everyone):
            w.writerow([pid, f"person{i}@bench.example", cohort])
        del everyone
    clarion_json(["contacts", "import", "--org", org["id"], str(people_csv)], env)
    people_csv.unlink()
    seconds["org_app_people"] = time.monotonic() - t0
    world = World(org["id"], org["admin_token"], app_id, api_token, ios, android,
                  plan.devices_per_person, p8, sa, seconds, groups=groups,
                  group_devices=group_devices)
    dpp = plan.devices_per_person

    def registrations() -> Iterator[Registration]:
        for pid in ios:
            for _ in range(dpp):
                yield pid, "ApnsDeviceToken", os.urandom(32).hex()
        for pid in android:
            for _ in range(dpp):
                yield pid, "FcmDeviceToken", fcm_token()
        for name, people in groups.items():
            for pid, n in zip(people, group_devices[name], strict=True):
                for _ in range(n):
                    yield pid, "ApnsDeviceToken", os.urandom(32).hex()

    group_total = sum(sum(v) for v in group_devices.values())
    total = (len(ios) + len(android)) * dpp + group_total
    proc, port = serve(env, work / "logs" / "world-serve.log", launcher=False)
    try:
        t1 = time.monotonic()
        done = [0]

        def progress(n: int) -> None:
            done[0] += n
            on_progress("registering devices", done[0], total)

        asyncio.run(_register(port, world, registrations(), progress))
        seconds["register_202"] = time.monotonic() - t1
        deadline = time.monotonic() + 1800
        while True:
            idle, counts = jobs_idle(env)
            on_progress("waiting for the worker to store them", counts.get("done", 0), 0)
            if idle:
                break
            if time.monotonic() > deadline or not proc.alive():
                raise RuntimeError(f"registration jobs did not drain: {counts}\n{proc.tail()}")
            time.sleep(1)
        seconds["register_stored"] = time.monotonic() - t1
    finally:
        proc.stop()
    world.devices = count_devices(var_dir=var_dir, database_url=database_url)
    expected = {"ios": len(ios) * dpp + group_total, "android": len(android) * dpp}
    for platform, n in expected.items():
        if n and world.devices.get(platform, 0) != n:
            raise RuntimeError(f"{platform}: {world.devices.get(platform, 0)} devices stored, "
                               f"{n} registered (see {work / 'logs' / 'world-serve.log'})")
    return world


def _pg_dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://")


def count_devices(*, var_dir: Path | None, database_url: str | None) -> dict[str, int]:
    sql = "SELECT platform, count(*) FROM devices WHERE state = 'active' GROUP BY platform"
    if database_url:
        async def q() -> dict[str, int]:
            conn = await asyncpg.connect(_pg_dsn(database_url))
            try:
                return {r[0]: int(r[1]) for r in await conn.fetch(sql)}
            finally:
                await conn.close()
        return asyncio.run(q())
    assert var_dir is not None
    with sqlite3.connect(var_dir / "clarion.db") as db:
        return {r[0]: int(r[1]) for r in db.execute(sql)}


# ------------------------------------------------------------------------ copies per scenario


def copy_sqlite(world_dir: Path, target: Path) -> Path:
    """A fresh copy of the world's var directory (consistent: uses SQLite's backup API)."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    src = sqlite3.connect(world_dir / "clarion.db")
    dst = sqlite3.connect(target / "clarion.db")
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    for extra in world_dir.iterdir():
        if extra.is_file() and not extra.name.startswith("clarion.db"):
            shutil.copy2(extra, target / extra.name)
    return target


def new_pg_name(tag: str) -> str:
    return f"clarion_bench_delivery_{tag}_{secrets.token_hex(3)}"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_pg(name: str, template: str | None = None) -> str:
    suffix = f" TEMPLATE {template}" if template else ""
    asyncio.run(_admin(f'CREATE DATABASE "{name}"{suffix}'))
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


def drop_databases(names: list[str]) -> None:
    for name in names:
        try:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except Exception as exc:  # keep dropping the others
            print(f"could not drop {name}: {exc}", file=sys.stderr)
