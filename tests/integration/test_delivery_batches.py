"""Delivery in bounded pieces (SQLite and PostgreSQL): fan-out pages bounded by devices, and an
outcome applied once even when two workers raced on the same deliveries."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from clarion.api.app import create_app
from clarion.bootstrap import Container
from clarion.domain.outcomes import DeviceSend, Outcome
from clarion.providers.fake import FakeSender
from clarion.services import fanout
from clarion.services.delivery import Delivery
from clarion.services.fanout import SEND_FANOUT
from clarion.store import tables as t
from tests.factories import World, drain, world

pytestmark = pytest.mark.integration


async def _setup(c: Container, devices_per_person: Sequence[int]) -> tuple[World, str]:
    """People with the given numbers of Android devices, and a send to all of them. The
    numbers go to the people in id order: the order fan-out walks a chunk of the audience."""
    w = await world(c, people_count=len(devices_per_person), dry_run_on_register=False)
    transport = httpx.ASGITransport(app=create_app(c))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        regs = [{"MobileAppId": w.app_id, "UserId": p, "ApiToken": w.api_token,
                 "FcmDeviceToken": f"fcm-{i}-{k}"}
                for i, (p, n) in enumerate(zip(sorted(w.person_ids), devices_per_person,
                                                       strict=True))
                for k in range(n)]
        for start in range(0, len(regs), 100):
            r = await client.post(
                f"/api/v1.0/orgs/{w.org_id}/pushdeviceregistration/devices/batch",
                json=regs[start:start + 100])
            assert r.status_code == 202, r.text
        await drain(c)
        r = await client.post(f"/v1/orgs/{w.org_id}/sends",
                              headers={"authorization": f"Bearer {w.admin_token}"},
                              json={"app_id": w.app_id, "user_ids": w.person_ids,
                                    "message": {"title": "Hi", "body": "There"}})
        assert r.status_code == 202, r.text
    return w, r.json()["id"]


async def _rolled(c: Container, send_id: str) -> dict[str, int]:
    async with c.db.read() as conn:
        return dict((await conn.execute(  # type: ignore[arg-type]
            select(t.report_counters.c.metric, func.sum(t.report_counters.c.value))
            .where(t.report_counters.c.send_id == send_id)
            .group_by(t.report_counters.c.metric))).all())


async def test_fan_out_pages_are_bounded_by_devices_not_people(
    container: Container, fake_sender: FakeSender, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout, "DELIVERIES_PER_PAGE", 5)
    per_person = [2, 2, 0, 2, 7, 1, 3, 3]  # one person alone has more than a page
    _, send_id = await _setup(container, per_person)
    pages: list[int] = []
    while await drain(container, kinds=[SEND_FANOUT.name], rounds=1):
        async with container.db.read() as conn:
            pages.append((await conn.execute(select(t.deliveries.c.id).where(
                t.deliveries.c.send_id == send_id))).all().__len__())
    # cumulative deliveries after each page: never more than 5 at once, except the person
    # with 7 devices who is a page of their own
    assert pages == [4, 6, 13, 17, 20]
    await drain(container)
    async with container.db.read() as conn:
        rows = (await conn.execute(select(t.deliveries.c.device_id, t.deliveries.c.state)
                                   .where(t.deliveries.c.send_id == send_id))).all()
        send = (await conn.execute(select(t.sends.c.state, t.sends.c.device_count)
                                   .where(t.sends.c.id == send_id))).one()
    assert len(rows) == len({r.device_id for r in rows}) == sum(per_person)
    assert {r.state for r in rows} == {"accepted"}
    assert send.device_count == sum(per_person)
    assert len([s for s in fake_sender.sent if not s.dry_run]) == sum(per_person)
    assert await _rolled(container, send_id) == {
        "inflow": 8, "deliveries": 20, "not_sent:no_valid_device": 1, "sent": 20,
        "sent_people": 7}


async def test_a_page_run_again_mid_fan_out_counts_nobody_twice(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed after a page's commit but before its job was marked done runs the page
    again (lease expiry) while the next pages are under way."""
    monkeypatch.setattr(fanout, "DELIVERIES_PER_PAGE", 5)
    per_person = [1] * 12 + [0] * 3
    _, send_id = await _setup(container, per_person)
    assert await drain(container, kinds=[SEND_FANOUT.name], rounds=1)  # page 0
    assert await drain(container, kinds=[SEND_FANOUT.name], rounds=1)  # page 1
    await container.fanout.page(fanout.FanOutPage(send_id, 0))  # page 0 again
    await container.fanout.page(fanout.FanOutPage(send_id, 5))  # page 1 again
    await drain(container)
    assert await _rolled(container, send_id) == {
        "inflow": 15, "deliveries": 12, "not_sent:no_valid_device": 3, "sent": 12,
        "sent_people": 12}


class _Racing:
    """A sender during whose first call another worker delivers the same rows completely."""

    def __init__(self, inner: FakeSender, race: Any) -> None:
        self.inner = inner
        self.race = race
        self.calls = 0

    async def send(self, credentials: Mapping[str, Any],
                   batch: Sequence[DeviceSend]) -> list[Outcome]:
        self.calls += 1
        if self.calls == 1:
            await self.race()
        return await self.inner.send(credentials, batch)


@pytest.mark.parametrize("raced", [6, 4], ids=["all-raced", "some-raced"])
async def test_deliveries_finished_by_another_worker_are_applied_and_counted_once(
    container: Container, fake_sender: FakeSender, raced: int
) -> None:
    _, send_id = await _setup(container, [2, 1, 3])
    await drain(container, kinds=[SEND_FANOUT.name])
    async with container.db.read() as conn:
        ids = [r.id for r in (await conn.execute(select(t.deliveries.c.id).where(
            t.deliveries.c.send_id == send_id))).all()]
    assert all(uuid.UUID(i).version == 7 for i in ids)  # time-ordered primary keys
    async def other_worker() -> None:  # finishes ``raced`` of the six deliveries first
        await worker_with(fake_sender).deliver(ids[:raced])

    def worker_with(sender: Any) -> Delivery:
        c = container
        return Delivery(db=c.db, clock=c.clock, queue=c.queue, apps=c.apps,
                        senders=dict.fromkeys(("ios", "android", "web"), sender),  # type: ignore[arg-type]
                        policy=c.policy, public_url="http://x", link_key=c.link_key)

    racing = _Racing(fake_sender, other_worker)
    await worker_with(racing).deliver(ids)
    sent = [s for s in fake_sender.sent if not s.dry_run]
    assert len(sent) == 6 + raced  # both workers sent (the race a lease takeover allows) ...
    assert await _rolled(container, send_id) == {  # ... but the outcome counts once
        "inflow": 3, "deliveries": 6, "sent": 6, "sent_people": 3}
    await worker_with(fake_sender).deliver(ids)
    assert len([s for s in fake_sender.sent if not s.dry_run]) == 6 + raced  # none pending


async def test_the_first_page_is_small_so_the_first_notifications_leave_early(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout, "DELIVERIES_PER_PAGE", 10)
    monkeypatch.setattr(fanout, "FIRST_PAGE_DELIVERIES", 3)
    _, send_id = await _setup(container, [1] * 12)
    pages: list[int] = []
    while await drain(container, kinds=[SEND_FANOUT.name], rounds=1):
        async with container.db.read() as conn:
            pages.append(len((await conn.execute(select(t.deliveries.c.id).where(
                t.deliveries.c.send_id == send_id))).all()))
    assert pages == [3, 12]
