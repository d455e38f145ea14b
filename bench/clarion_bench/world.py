"""The data every scenario starts from: one org, one Android app, N people.

Built once per database kind through Clarion's own CLI (as an operator would), then copied for
each scenario so every scenario starts from the same fresh database: SQLite by copying the var
directory, PostgreSQL with ``CREATE DATABASE … TEMPLATE``. Every PostgreSQL database created
here is dropped by ``World.teardown()``.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

REPO = Path(__file__).resolve().parents[2]
CLARION = [sys.executable, "-m", "clarion.cli"]
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _service_account() -> dict[str, Any]:
    """A syntactically valid service-account key (the RSA key is real, the account is not)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {
        "type": "service_account", "project_id": "bench-push", "private_key_id": "bench1",
        "private_key": pem, "client_email": "push@bench-push.iam.gserviceaccount.com",
        "client_id": "1234567890", "token_uri": "https://oauth2.googleapis.com/token",
    }


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> Any:
    src = os.environ.get("BENCH_CLARION_SRC")  # A/B runs: each variant builds its own world
    if src:
        env = {**env, "PYTHONPATH": src}
    proc = subprocess.run(
        [*CLARION, *args, "--json"], env=env, cwd=cwd, capture_output=True, text=True,
        timeout=300, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"clarion {' '.join(args)} failed ({proc.returncode}):\n"
                           f"{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout)


_INLINE_SQLITE = ("SELECT count(*) FROM jobs, json_each(jobs.payload, '$.ids') AS item "
                  "WHERE jobs.kind = 'registration.process' "
                  "AND jobs.state IN ('queued', 'running') AND item.type = 'object'")
_INLINE_PG = ("SELECT count(*) FROM jobs, json_array_elements(jobs.payload -> 'ids') AS item "
              "WHERE jobs.kind = 'registration.process' "
              "AND jobs.state IN ('queued', 'running') AND json_typeof(item) = 'object'")


@dataclass
class Ids:
    org_id: str
    app_id: str
    api_token: str
    users_file: Path
    user_ids: list[str]


@dataclass
class Db:
    """One scenario's database: how to point Clarion at it and how to count its rows."""

    kind: str  # sqlite | postgresql
    env: dict[str, str]
    sqlite_path: Path | None = None
    pg_dsn: str | None = None

    def counts(self) -> dict[str, int]:
        """devices, pending requests, all requests and queued/running jobs, in one snapshot."""
        queries = {
            "devices": "SELECT count(*) FROM devices",
            # stored requests still Pending, plus untracked ones riding in queued jobs
            "pending": "SELECT (SELECT count(*) FROM registration_requests "
                       "WHERE status = 'Pending') + (" + (
                           _INLINE_SQLITE if self.sqlite_path is not None else _INLINE_PG) + ")",
            "requests": "SELECT count(*) FROM registration_requests",
            "success": "SELECT count(*) FROM registration_requests WHERE status = 'Success'",
            "jobs_waiting": "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')",
            "jobs_dead": "SELECT count(*) FROM jobs WHERE state = 'dead'",
        }
        if self.sqlite_path is not None:
            conn = sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True, timeout=30)
            try:
                conn.execute("BEGIN")  # one read snapshot for every count
                out = {k: int(conn.execute(q).fetchone()[0]) for k, q in queries.items()}
                conn.execute("COMMIT")
                return out
            finally:
                conn.close()
        return asyncio.run(self._pg_counts(queries))

    async def _pg_counts(self, queries: dict[str, str]) -> dict[str, int]:
        conn = await asyncpg.connect(self.pg_dsn)
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return {k: int(await conn.fetchval(q)) for k, q in queries.items()}
        finally:
            await conn.close()


@dataclass
class World:
    workdir: Path
    people: int
    ids: dict[str, Ids] = field(default_factory=dict)  # by database kind
    _user_ids: list[str] = field(default_factory=list)
    _sqlite_template: Path | None = None
    _pg_template: str | None = None
    _pg_secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    _pg_created: list[str] = field(default_factory=list)
    _tag: str = field(default_factory=lambda: secrets.token_hex(3))

    def __post_init__(self) -> None:
        self._user_ids = [str(uuid.uuid4()) for _ in range(self.people)]

    # -- building -----------------------------------------------------------------------

    def _populate(self, env: dict[str, str]) -> Ids:
        """Create the org, the app and the people through the CLI; returns their ids."""
        org = _cli(["orgs", "create", "--name", "Bench"], env, self.workdir)
        config = self.workdir / "app.json"
        config.write_text(json.dumps({
            "name": "Bench", "android": {"service_account": _service_account()},
            "settings": {"dry_run_on_register": False, "max_devices_per_person": 1000},
        }), encoding="utf-8")
        app = _cli(["apps", "create", "--org", org["id"], "--config", str(config)], env,
                   self.workdir)
        csv = self.workdir / "people.csv"
        csv.write_text("id,email\n" + "".join(
            f"{uid},bench{i}@bench.example\n" for i, uid in enumerate(self._user_ids)),
            encoding="utf-8")
        imported = _cli(["contacts", "import", "--org", org["id"], str(csv)], env, self.workdir)
        if imported.get("imported") != len(self._user_ids):
            raise RuntimeError(f"importing people failed: {imported}")
        users_file = self.workdir / "users.txt"
        users_file.write_text("\n".join(self._user_ids) + "\n", encoding="utf-8")
        return Ids(org["id"], app["id"], app["api_token"], users_file, self._user_ids)

    def build_sqlite(self, env: dict[str, str]) -> None:
        template = self.workdir / "sqlite-template"
        self.ids["sqlite"] = self._populate(env | {"CLARION_VAR_DIR": str(template)})
        self._sqlite_template = template

    def build_postgres(self, env: dict[str, str]) -> None:
        name = f"clarion_bench_tpl_{self._tag}"
        self._create_pg(name)
        self._pg_template = name
        self.ids["postgresql"] = self._populate(env | {
            "CLARION_DATABASE_URL": self._pg_url(name), "CLARION_SECRET_KEY": self._pg_secret,
            "CLARION_VAR_DIR": str(self.workdir / "pg-var")})

    # -- per scenario ---------------------------------------------------------------------

    def fresh(self, kind: str, name: str) -> tuple[Db, Ids]:
        """A new database copied from the template of ``kind``; returns it with its ids."""
        if kind == "sqlite":
            assert self._sqlite_template is not None, "build_sqlite() first"
            var = self.workdir / f"var-{name}"
            shutil.copytree(self._sqlite_template, var)
            db = Db("sqlite", {"CLARION_VAR_DIR": str(var)}, sqlite_path=var / "clarion.db")
            return db, self.ids["sqlite"]
        assert self._pg_template is not None, "build_postgres() first"
        name_db = f"clarion_bench_{name.replace('-', '_')}_{self._tag}"
        self._create_pg(name_db, template=self._pg_template)
        env = {"CLARION_DATABASE_URL": self._pg_url(name_db),
               "CLARION_SECRET_KEY": self._pg_secret,
               "CLARION_VAR_DIR": str(self.workdir / f"var-{name}")}
        db = Db("postgresql", env, pg_dsn=f"postgresql://postgres@127.0.0.1:5432/{name_db}")
        return db, self.ids["postgresql"]

    # -- PostgreSQL -------------------------------------------------------------------------

    @staticmethod
    def _pg_url(db: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db}"

    def _create_pg(self, db: str, template: str | None = None) -> None:
        async def go() -> None:
            conn = await asyncpg.connect(PG_ADMIN_DSN)
            try:
                tpl = f" TEMPLATE {template}" if template else ""
                await conn.execute(f"CREATE DATABASE {db}{tpl}")
            finally:
                await conn.close()

        asyncio.run(go())
        self._pg_created.append(db)

    def teardown(self) -> list[str]:
        """Drop every PostgreSQL database this run created; returns the ones that failed."""
        failed: list[str] = []

        async def go() -> None:
            conn = await asyncpg.connect(PG_ADMIN_DSN)
            try:
                for db in reversed(self._pg_created):
                    for _ in range(20):  # a just-stopped server may still hold a connection
                        try:
                            await conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
                            break
                        except asyncpg.PostgresError:
                            await asyncio.sleep(0.5)
                    else:
                        failed.append(db)
            finally:
                await conn.close()

        if self._pg_created:
            asyncio.run(go())
        return failed

