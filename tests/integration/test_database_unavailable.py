"""The database unavailable (issue 10, item 6), through the ASGI app on real databases:
a SQLite file locked by another process, a read-only database (SQLite opened read-only, as
SQLite itself opens a file it may not write; PostgreSQL with read-only transactions), and a
PostgreSQL server that does not answer. Writes answer 503 + Retry-After with a JSON error
within CLARION_DB_WRITE_TIMEOUT_SECONDS, reads keep working where the database allows them,
/healthz (liveness) stays 200 and /readyz says what is not ready. An unexpected error is a
JSON 500 that gives nothing away."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from clarion.api.app import create_app
from clarion.bootstrap import Container, build
from clarion.domain.outcomes import Platform
from clarion.providers.fake import FakeSender
from clarion.services import people, registration
from clarion.store.migrate import upgrade
from tests.conftest import PG_DSN, make_settings
from tests.e2e.conftest import free_port
from tests.factories import World, apns_token, world
from tests.integration.test_interactions import events_path, sent_world

pytestmark = pytest.mark.integration

TIMEOUT = 0.5  # CLARION_DB_WRITE_TIMEOUT_SECONDS in these tests
ANSWER_WITHIN = 10.0  # the old code answered after busy_timeout = 30 s (a plain-text 500)

_LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin
"""


@contextmanager
def locked_by_another_process(path: Path) -> Iterator[None]:
    """Another process (a sqlite3 shell, a backup tool, another Clarion) holds the write lock."""
    proc = subprocess.Popen([sys.executable, "-c", _LOCKER, str(path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    try:
        assert proc.stdout.readline() == b"locked\n"
        yield
    finally:
        proc.stdin.close()
        proc.wait(10)
        proc.stdout.close()


@asynccontextmanager
async def started(url: str, tmp_path: Path, **overrides: Any) -> AsyncIterator[Container]:
    fake = FakeSender()
    c = build(make_settings(url, tmp_path, db_write_timeout_seconds=TIMEOUT, **overrides),
              senders=dict.fromkeys(Platform, fake))
    await c.start()
    try:
        yield c
    finally:
        await c.close()


@asynccontextmanager
async def http(c: Container) -> AsyncIterator[httpx.AsyncClient]:
    # raise_app_exceptions=False: see what a client sees, as uvicorn would answer it
    transport = httpx.ASGITransport(app=create_app(c), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def timed(request: Any) -> tuple[httpx.Response, float]:
    t0 = time.monotonic()
    response = await asyncio.wait_for(request, ANSWER_WITHIN)
    return response, time.monotonic() - t0


def assert_unavailable(r: httpx.Response, reason: str) -> dict[str, Any]:
    assert r.status_code == 503, r.text
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == "database_unavailable"
    assert reason in error["message"]
    assert error["fix"]
    return error


def registration_body(w: World) -> dict[str, Any]:
    return {"MobileAppId": w.app_id, "UserId": w.person_ids[0], "ApiToken": w.api_token,
            "ApnsDeviceToken": apns_token()}


def reg_path(w: World, batch: bool = False) -> str:
    return (f"/api/v1.0/orgs/{w.org_id}/pushdeviceregistration/devices"
            + ("/batch" if batch else ""))


# ------------------------------------------------------------------------- locked (SQLite)

async def test_writes_answer_503_while_another_process_holds_the_sqlite_lock(
        sqlite_url: str, tmp_path: Path) -> None:
    await asyncio.to_thread(upgrade, sqlite_url)
    path = Path(sqlite_url.split("///", 1)[1])
    async with started(sqlite_url, tmp_path) as c, http(c) as client:
        w = await world(c, dry_run_on_register=False)
        admin = {"Authorization": f"Bearer {w.admin_token}"}
        with locked_by_another_process(path):
            r, took = await timed(client.post(f"/v1/orgs/{w.org_id}/people", headers=admin,
                                              json={"email": "ada@contoso.com"}))
            assert_unavailable(r, "locked")
            assert took < TIMEOUT + 3
            # The CIJ fast paths: a registration (group commit) and a batch.
            r, took = await timed(client.post(reg_path(w), json=registration_body(w),
                                              headers={"x-ms-track-registration": "true"}))
            assert_unavailable(r, "locked")
            assert took < TIMEOUT + 3
            r, _ = await timed(client.post(reg_path(w, batch=True),
                                           json=[registration_body(w)]))
            assert_unavailable(r, "locked")
            # Reads go on (WAL: readers do not wait for the writer).
            r = await client.get(f"/v1/orgs/{w.org_id}/people", headers=admin)
            assert r.status_code == 200, r.text
            assert (await client.get("/healthz")).status_code == 200  # alive
            r, _ = await timed(client.get("/readyz"))
            assert r.status_code == 503, r.text
            ready = r.json()
            assert ready["status"] == "not_ready"
            assert ready["checks"]["database"]["read"] == "ok"
            assert ready["checks"]["database"]["write"] == "locked"
            assert any("locked" in reason for reason in ready["not_ready"])
        # The lock is gone: ready again, and writes go through.
        r = await client.get("/readyz")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "ready"
        r = await client.post(reg_path(w), json=registration_body(w))
        assert r.status_code == 202, r.text


async def test_interaction_reports_answer_503_while_the_sqlite_lock_is_held(
        sqlite_url: str, tmp_path: Path) -> None:
    await asyncio.to_thread(upgrade, sqlite_url)
    path = Path(sqlite_url.split("///", 1)[1])
    fake = FakeSender()
    c = build(make_settings(sqlite_url, tmp_path, db_write_timeout_seconds=TIMEOUT),
              senders=dict.fromkeys(Platform, fake))
    await c.start()
    try:
        async with http(c) as client:
            s = await sent_world(c, client, fake)
            body = {"TrackingId": s.send_id, "DeviceToken": s.fcm, "PushNotificationStatus": 1}
            with locked_by_another_process(path):
                r, took = await timed(client.post(events_path(s.w.org_id), json=body))
                assert_unavailable(r, "locked")
                assert took < TIMEOUT + 3
            r = await client.post(events_path(s.w.org_id), json=body)
            assert r.status_code == 202, r.text
    finally:
        await c.close()


# ------------------------------------------------------------------------------ read-only

async def test_a_read_only_sqlite_database_refuses_writes_with_503_and_serves_reads(
        sqlite_url: str, tmp_path: Path) -> None:
    """``mode=ro`` is how SQLite opens a file it may not write (permissions, a read-only
    mount): same SQLITE_READONLY errors. Tests run as root, whom file modes do not stop; the
    e2e tests use a read-only mount and dropped capabilities for the real thing."""
    await asyncio.to_thread(upgrade, sqlite_url)
    async with started(sqlite_url, tmp_path) as c:
        w = await world(c, dry_run_on_register=False)
    path = sqlite_url.split("///", 1)[1]
    read_only = f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"
    async with started(read_only, tmp_path) as c, http(c) as client:
        admin = {"Authorization": f"Bearer {w.admin_token}"}
        r = await client.get(f"/v1/orgs/{w.org_id}/people", headers=admin)
        assert r.status_code == 200, r.text
        assert len(r.json()["items"]) == 2
        r, _ = await timed(client.post(f"/v1/orgs/{w.org_id}/people", headers=admin,
                                       json={"email": "ada@contoso.com"}))
        assert_unavailable(r, "read-only")
        r, _ = await timed(client.post(reg_path(w), json=registration_body(w)))
        assert_unavailable(r, "read-only")
        assert (await client.get("/healthz")).status_code == 200
        r, _ = await timed(client.get("/readyz"))
        assert r.status_code == 503
        assert r.json()["checks"]["database"]["write"] == "read_only"


async def test_a_read_only_postgresql_refuses_writes_with_503(pg_url: str,
                                                                tmp_path: Path) -> None:
    """A standby, or ``default_transaction_read_only``: PostgreSQL's read-only transactions."""
    await asyncio.to_thread(upgrade, pg_url)
    async with started(pg_url, tmp_path) as c:
        w = await world(c, dry_run_on_register=False)
    name = pg_url.rsplit("/", 1)[1]
    admin_conn = await asyncpg.connect(PG_DSN)
    try:
        await admin_conn.execute(
            f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    finally:
        await admin_conn.close()
    async with started(pg_url, tmp_path) as c, http(c) as client:
        admin = {"Authorization": f"Bearer {w.admin_token}"}
        r = await client.get(f"/v1/orgs/{w.org_id}/people", headers=admin)
        assert r.status_code == 200, r.text
        r, _ = await timed(client.post(f"/v1/orgs/{w.org_id}/people", headers=admin,
                                       json={"email": "ada@contoso.com"}))
        assert_unavailable(r, "read-only")
        r, _ = await timed(client.post(reg_path(w), json=registration_body(w)))
        assert_unavailable(r, "read-only")
        r, _ = await timed(client.get("/readyz"))
        assert r.status_code == 503
        assert r.json()["checks"]["database"]["write"] == "read_only"


# --------------------------------------------------------------------- PostgreSQL is down

async def test_an_unreachable_postgresql_answers_503_and_readyz_says_so(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/clarion"  # nothing listens
    async with started(url, tmp_path) as c, http(c) as client:
        org = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
        r, took = await timed(client.get(f"/v1/orgs/{org}/people",
                                         headers={"Authorization": "Bearer clr_adm_x"}))
        assert_unavailable(r, "cannot be reached")
        assert took < TIMEOUT + 3
        r, _ = await timed(client.post(
            f"/api/v1.0/orgs/{org}/pushdeviceregistration/devices",
            json={"MobileAppId": org, "UserId": org, "ApiToken": "x" * 40,
                  "ApnsDeviceToken": apns_token()}))
        assert_unavailable(r, "cannot be reached")
        assert (await client.get("/healthz")).status_code == 200
        r, _ = await timed(client.get("/readyz"))
        assert r.status_code == 503
        checks = r.json()["checks"]
        assert checks["database"]["read"] == "unreachable"


# ------------------------------------------------------------------------- anything else

async def test_an_unexpected_error_is_a_json_500_that_gives_nothing_away(
        container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    w = await world(container, dry_run_on_register=False)

    async def broken(**_kwargs: Any) -> Any:
        raise RuntimeError("boom in /srv/clarion/secret_internals.py")

    monkeypatch.setattr(people, "create_person", broken)
    monkeypatch.setattr(registration, "accept_devices", broken)
    async with http(container) as client:
        r = await client.post(f"/v1/orgs/{w.org_id}/people", json={"email": "a@x.com"},
                              headers={"Authorization": f"Bearer {w.admin_token}"})
        for answer in (r, await client.post(reg_path(w), json=registration_body(w))):
            assert answer.status_code == 500
            assert answer.headers["content-type"].startswith("application/json")
            assert answer.json()["error"]["code"] == "internal_error"
            assert "boom" not in answer.text
            assert "secret_internals" not in answer.text
