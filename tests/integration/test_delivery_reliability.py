"""Every valid device gets exactly one accepted notification, whatever the providers throw.

Real senders against the emulators over real sockets, with faults on: 429 and 503 with
Retry-After, slow answers, dropped connections, dead tokens and gone subscriptions. The worker
runs as in production until nothing is pending; then each valid device must have been accepted
exactly once by its provider, every dead token must be pruned, and nothing may be left queued.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from clarion.bootstrap import Container, build, provider_settings
from clarion.domain.outcomes import Platform
from clarion.emulators.fcm import FcmEmulator
from clarion.emulators.webpush import WebPushEmulator
from clarion.providers.fcm import FcmSender
from clarion.providers.webpush import WebPushSender
from clarion.services import apps, orgs, people, registration, sending
from clarion.store import tables as t
from clarion.store.migrate import upgrade
from clarion.worker.handlers import build_handlers
from clarion.worker.loop import Worker
from tests.conftest import make_settings

pytestmark = pytest.mark.integration

PEOPLE = 60


@pytest.fixture
async def emulators() -> AsyncIterator[tuple[FcmEmulator, WebPushEmulator]]:
    fcm = FcmEmulator(seed=7, rate_429=0.1, rate_503=0.1, retry_after="0", latency_ms=2,
                      drop_every=37)
    web = WebPushEmulator(seed=11, rate_429=0.1, rate_503=0.05, retry_after=0, latency_ms=2,
                          drop_every=29)
    await fcm.start()
    await web.start()
    try:
        yield fcm, web
    finally:
        await fcm.stop()
        await web.stop()


@pytest.fixture
async def live(db_url: str, tmp_path: Path, emulators: tuple[FcmEmulator, WebPushEmulator]
               ) -> AsyncIterator[Container]:
    fcm, _ = emulators
    await asyncio.to_thread(upgrade, db_url)
    cfg = make_settings(db_url, tmp_path, fcm_url=fcm.url, worker_concurrency=4)
    ps = provider_settings(cfg)
    c = build(cfg, senders={Platform.ANDROID: FcmSender(ps), Platform.WEB: WebPushSender(ps)})
    await c.start()
    try:
        yield c
    finally:
        await c.close()


async def _setup(c: Container, fcm: FcmEmulator, web: WebPushEmulator) -> dict[str, Any]:
    org = await orgs.create_org(db=c.db, clock=c.clock, name="Contoso")
    created = await apps.create_app(db=c.db, box=c.box, clock=c.clock, org_id=org.id, document={
        "name": "Contoso", "android": {"service_account": fcm.new_service_account("contoso")},
        "web": {"vapid_subject": "mailto:ops@contoso.com"},
        "settings": {"dry_run_on_register": False}}, fcm_url=c.settings.fcm_url)
    vapid = created.app.platforms[Platform.WEB]["vapid_public_key"]
    person_ids, rows, valid, dead = [], [], set(), set()
    for i in range(PEOPLE):
        p = await people.create_person(db=c.db, clock=c.clock, settings=c.settings,
                                       org_id=org.id, data={"email": f"p{i}@contoso.com"})
        person_ids.append(p.id)
        token = f"dead-token-{i}" if i % 10 == 0 else f"fcm-token-{i}"
        (dead if token.startswith("dead") else valid).add(token)
        sub = web.subscribe(vapid)
        if i % 15 == 0:
            web.mark_gone(sub["endpoint"])
            dead.add(sub["endpoint"])
        else:
            valid.add(sub["endpoint"])
        rows += [{"MobileAppId": created.app.id, "UserId": p.id, "ApiToken": created.api_token,
                  "FcmDeviceToken": token},
                 {"MobileAppId": created.app.id, "UserId": p.id, "ApiToken": created.api_token,
                  "WebPushSubscription": sub}]
    from clarion.domain.registration import parse_device_batch

    for start in range(0, len(rows), 100):
        await registration.accept_devices(
            writer=c.writer, api_tokens=c.api_tokens, clock=c.clock, settings=c.settings,
            org_id=org.id, requests=parse_device_batch(rows[start:start + 100]), tracked=False,
            callback=None)
    return {"org": org.id, "app": created.app.id, "people": person_ids, "valid": valid,
            "dead": dead}


async def _run_until_idle(c: Container, *, seconds: float) -> None:
    stop = asyncio.Event()
    worker = Worker(c.queue, build_handlers(c), concurrency=4, batch_size=50, poll_seconds=0.1)
    task = asyncio.create_task(worker.run(stop))
    deadline = asyncio.get_running_loop().time() + seconds
    try:
        while asyncio.get_running_loop().time() < deadline:
            counts = await c.queue.counts()
            if counts.get("queued", 0) == 0 and counts.get("running", 0) == 0:
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"still busy after {seconds} s: {await c.queue.counts()}")
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)


async def test_faults_end_with_exactly_one_accepted_notification_per_valid_device(
    live: Container, emulators: tuple[FcmEmulator, WebPushEmulator]
) -> None:
    fcm, web = emulators
    world = await _setup(live, fcm, web)
    await _run_until_idle(live, seconds=60)  # registrations
    send = await sending.create_send(
        db=live.db, queue=live.queue, clock=live.clock, org_id=world["org"],
        document={"app_id": world["app"], "user_ids": world["people"],
                  "message": {"title": "Sale", "body": "Today only",
                              "link": "https://contoso.com/sale"}})
    await _run_until_idle(live, seconds=120)

    endpoint = {sub_id: sub.endpoint for sub_id, sub in web.subscriptions.items()}
    accepted = Counter([m["message"]["token"] for m in fcm.delivered]
                       + [endpoint[m.subscription_id] for m in web.received])
    assert set(accepted) == world["valid"]
    assert all(n == 1 for n in accepted.values()), [k for k, n in accepted.items() if n > 1]
    # The faults really happened (else this test proves nothing).
    assert fcm.sends > len(fcm.delivered)
    assert web.pushes > len(web.received)

    got = await sending.get_send(db=live.db, org_id=world["org"], send_id=send.id)
    assert got.counts == {"accepted": len(world["valid"]), "invalid_token": len(world["dead"])}
    async with live.db.read() as conn:
        states = dict((await conn.execute(
            select(t.devices.c.state, func.count()).group_by(t.devices.c.state))).all())
    assert states == {"active": len(world["valid"]), "invalid": len(world["dead"])}
    counts = await live.queue.counts()
    assert (counts["queued"], counts["running"], counts["dead"]) == (0, 0, 0), counts
