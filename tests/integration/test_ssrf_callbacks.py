"""Registration callbacks: the SSRF matrix through the API, a failing callback that fails alone,
and logs that name a callback's origin only (real HTTP on 127.0.0.1, a fake DNS)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clarion.bootstrap import Container, build
from clarion.services.registration import CALLBACK_JOB
from clarion.store.jobs import NewJob
from clarion.store.migrate import upgrade
from clarion.worker.handlers import build_handlers
from clarion.worker.loop import Worker
from tests.conftest import make_settings
from tests.factories import World, drain, world
from tests.integration.ssrf_support import (
    CASES,
    PUBLIC_NAME,
    REBIND_NAME,
    Target,
    http_answer,
    network,
    redirect_to,
    start_target,
)

pytestmark = pytest.mark.integration

LITERALS = {"literal", "decimal", "hex", "octal", "short", "ipv6", "ipv4-mapped", "nat64", "6to4"}


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    started = await start_target()
    try:
        yield started
    finally:
        await started.stop()


@pytest.fixture
async def strict(sqlite_url: str, tmp_path: Path, target: Target) -> AsyncIterator[Container]:
    await asyncio.to_thread(upgrade, sqlite_url)
    settings = make_settings(sqlite_url, tmp_path, webhook_allow_private=False,
                             webpush_allow_private=False)
    c = build(settings, network=network(target.dns))
    await c.start()
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
async def api(strict: Container) -> AsyncIterator[httpx.AsyncClient]:
    from clarion.api.app import create_app

    transport = httpx.ASGITransport(app=create_app(strict))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def register_with_callback(api: httpx.AsyncClient, w: World, url: str,
                                 headers: dict[str, str] | None = None) -> httpx.Response:
    extra = {"x-ms-callback-url": url}
    if headers is not None:
        extra["x-ms-callback-url-headers"] = json.dumps(headers)
    return await api.post(
        f"/api/v1.0/orgs/{w.org_id}/pushdeviceregistration/devices", headers=extra,
        json={"MobileAppId": w.app_id, "UserId": w.person_ids[0], "ApiToken": w.api_token,
              "FcmDeviceToken": "fcm-callback-test"})


async def dead_jobs(c: Container) -> int:
    return (await c.queue.counts())["dead"]


@pytest.mark.parametrize("case", CASES)
async def test_a_callback_never_reaches_a_private_address(
        case: str, strict: Container, api: httpx.AsyncClient, target: Target,
        caplog: pytest.LogCaptureFixture) -> None:
    w = await world(strict, dry_run_on_register=False)
    r = await register_with_callback(api, w, f"http://{target.hosts()[case]}/hook?k=v")
    if case in LITERALS:  # refused when accepted: 400, nothing stored
        assert r.status_code == 400, f"{case}: {r.status_code}"
        assert "CLARION_WEBHOOK_ALLOW_PRIVATE" in r.json()["error"]["fix"]
    else:
        assert r.status_code == 202
        with caplog.at_level(logging.INFO):
            await drain(strict)
    assert target.silent(), f"{case}: a loopback listener was connected to"
    assert await dead_jobs(strict) == 0
    if case == "rebinding":
        assert len(target.decoy.requests) == 1  # delivered to the checked address
        assert target.dns.asked_for(REBIND_NAME) == 1
    elif case == "name":
        assert target.decoy.connections == 0
        assert "refused" in caplog.text


async def test_a_redirect_is_a_failure_and_is_not_followed(
        strict: Container, api: httpx.AsyncClient, target: Target,
        caplog: pytest.LogCaptureFixture) -> None:
    target.decoy.answer = redirect_to(f"http://127.0.0.1:{target.v4.port}/steal")
    w = await world(strict, dry_run_on_register=False)
    r = await register_with_callback(api, w, f"http://{PUBLIC_NAME}:{target.decoy.port}/hook")
    assert r.status_code == 202
    with caplog.at_level(logging.INFO):
        await drain(strict)
    assert len(target.decoy.requests) == 1
    assert target.silent()
    assert "307" in caplog.text


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        return int(s.getsockname()[1])


async def test_a_failing_callback_fails_alone_and_nothing_is_dead_lettered(
        strict: Container, target: Target) -> None:
    """One batch: a good callback and callbacks that fail in every way Clarion has seen (a
    refused address, a closed port, a header value that is not ASCII, stored data of the wrong
    shape). The good one is delivered once, every job is finished, none is dead: an operator's
    `clarion jobs retry` has nothing to re-send."""
    target.dns.answers["closed.ssrf.test"] = [[("127.0.0.2", _closed_port())]]
    public = f"http://{PUBLIC_NAME}:{target.decoy.port}"
    body = {"Status": "Success", "Signature": "s", "FailureReason": None}

    def job(url: Any, headers: Any = None, **payload: Any) -> NewJob:
        return NewJob(kind=CALLBACK_JOB, max_attempts=1, payload={
            "url": url, "headers": headers if headers is not None else {}, "body": body,
            "request_id": "r", **payload})

    await strict.queue.enqueue_now([
        job(f"http://127.0.0.1:{target.v4.port}/hook"),  # refused address
        job("http://closed.ssrf.test/hook"),  # connection refused
        job(f"{public}/cafe", headers={"X-Name": "café"}),  # the API accepts it; httpx raised
        job(f"{public}/bad", headers=["not", "a", "mapping"]),  # stored data of the wrong shape
        job(None),  # no URL at all
        job(f"{public}/bad", body=None, request_id=None),  # no body to send
        job(f"{public}/good"),  # the one that works
    ])
    handlers = build_handlers(strict)
    worker = Worker(strict.queue, {CALLBACK_JOB: handlers[CALLBACK_JOB]}, concurrency=1,
                    batch_size=50, poll_seconds=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        deadline = time.monotonic() + 10
        while sum((await strict.queue.counts()).values()) > 0:
            assert time.monotonic() < deadline, await strict.queue.counts()
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert await dead_jobs(strict) == 0
    assert target.silent()
    assert [r for r in target.decoy.requests if r.startswith(b"POST /good ")] != []
    assert len([r for r in target.decoy.requests if r.startswith(b"POST /good ")]) == 1
    assert not [r for r in target.decoy.requests if r.startswith(b"POST /bad ")]


async def test_logs_show_the_origin_never_the_path_or_query(
        strict: Container, api: httpx.AsyncClient, target: Target,
        caplog: pytest.LogCaptureFixture) -> None:
    target.decoy.answer = http_answer(500)
    w = await world(strict, dry_run_on_register=False)
    for url in (f"http://{PUBLIC_NAME}:{target.decoy.port}/private-path?token=s3cr3t-q",
                f"http://{target.hosts()['name']}/private-path?token=s3cr3t-q"):
        r = await register_with_callback(api, w, url)
        assert r.status_code == 202
    with caplog.at_level(logging.INFO):  # (DEBUG SQL parameters: issue 10 item 9, elsewhere)
        await drain(strict)
    assert len(target.decoy.requests) == 1
    assert f"http://{PUBLIC_NAME}:{target.decoy.port}" in caplog.text
    assert "s3cr3t-q" not in caplog.text
    assert "private-path" not in caplog.text
