"""A journey rig on the real parts for integration tests: the service built on SQLite or
PostgreSQL with a frozen clock and the fake sender, its API through ASGI, a world of eight
people (``live_rig``), and a stored push message document (``message``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from clarion.api.app import create_app
from clarion.bootstrap import Container, build
from clarion.clock import FrozenClock
from clarion.domain.outcomes import Platform
from clarion.providers.fake import FakeSender
from clarion.store.migrate import upgrade
from tests.conftest import make_settings
from tests.factories import World, drain, world


def message(app_id: str, name: str) -> dict[str, Any]:
    return {"name": name, "app_id": app_id, "category": "commercial",
            "title": f"{name}, {{{{FirstName}}}}", "body": "Hi",
            "placeholders": {"FirstName": {"source": "audience", "field": "first_name",
                                           "default": "there"}}}


@dataclass
class Live:
    c: Container
    clock: FrozenClock
    fake: FakeSender
    client: httpx.AsyncClient
    w: World

    @property
    def admin(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.w.admin_token}"}

    async def post(self, path: str, body: Any, status: int = 201) -> dict[str, Any]:
        return await self._call("POST", path, body, status)

    async def put(self, path: str, body: Any, status: int = 200) -> dict[str, Any]:
        return await self._call("PUT", path, body, status)

    async def _call(self, method: str, path: str, body: Any, status: int) -> dict[str, Any]:
        r = await self.client.request(method, f"/v1/orgs/{self.w.org_id}{path}", json=body,
                                      headers=self.admin)
        assert r.status_code == status, r.text
        out: dict[str, Any] = r.json()
        return out

    async def register(self, person: str, **token: Any) -> None:
        r = await self.client.post(
            f"/api/v1.0/orgs/{self.w.org_id}/pushdeviceregistration/devices",
            json={"MobileAppId": self.w.app_id, "UserId": person,
                  "ApiToken": self.w.api_token, **token})
        assert r.status_code == 202, r.text

    async def settle(self) -> None:
        """Every due job, twice over: the event bus's jobs are due PUBLISH_DELAY_MS after
        their commit, so the frozen clock moves that far (well inside PT8S) in between."""
        for _ in range(3):
            await drain(self.c)
            self.clock.advance(0.25)
        await drain(self.c)


@asynccontextmanager
async def live_rig(db_url: str, tmp_path: Path, *, people: int = 8) -> AsyncIterator[Live]:
    await asyncio.to_thread(upgrade, db_url)
    clock = FrozenClock(datetime(2027, 3, 1, 9, tzinfo=UTC))
    fake = FakeSender()
    c = build(make_settings(db_url, tmp_path), clock=clock,
              senders=dict.fromkeys(Platform, fake))
    await c.start()
    try:
        transport = httpx.ASGITransport(app=create_app(c))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            w = await world(c, people_count=people, dry_run_on_register=False)
            yield Live(c, clock, fake, client, w)
    finally:
        await c.close()
