"""Bounded request bodies (issue 10 item 2), through the ASGI app as a server drives it.

Every route answers 413 with the limit in the message, in one JSON shape, whether the size is
announced (Content-Length) or only discovered while reading; admin-token routes refuse a
missing token before reading the body. What is measured is what the app pulled from
``receive()``: bytes never pulled are bytes never held in memory.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.routing import APIRoute

from clarion.api.app import create_app
from clarion.api.intake import CheckedRoute
from clarion.bootstrap import Container, build
from clarion.domain.outcomes import Platform
from clarion.providers.fake import FakeSender
from clarion.store.migrate import upgrade
from tests.conftest import make_settings
from tests.factories import World, world

pytestmark = pytest.mark.integration

LIMIT = 8192  # CLARION_MAX_BODY_BYTES in these tests
ADMIN_LIMIT = 16384  # CLARION_ADMIN_MAX_BODY_BYTES
EVENTS_LIMIT = 1024  # CLARION_EVENTS_MAX_BODY_BYTES
BIG = 50 * 1024 * 1024
CHUNK = 64 * 1024


@pytest.fixture
async def small(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Container]:
    """A container with small body limits (the HTTP reading is the same on both databases)."""
    await asyncio.to_thread(upgrade, sqlite_url)
    c = build(make_settings(sqlite_url, tmp_path, max_body_bytes=LIMIT,
                            admin_max_body_bytes=ADMIN_LIMIT,
                            events_max_body_bytes=EVENTS_LIMIT),
              senders=dict.fromkeys(Platform, FakeSender()))
    await c.start()
    try:
        yield c
    finally:
        await c.close()


class Feed:
    """``receive()`` handing over a JSON body of about ``size`` bytes in 64 KiB chunks (one
    chunk object reused: the test itself holds no big body), counting what the app took."""

    def __init__(self, size: int, prefix: bytes = b'{"first_name": "') -> None:
        self.parts = [prefix] + [b"x" * CHUNK] * (size // CHUNK) + [b'"}']
        self.taken = 0

    async def __call__(self) -> dict[str, Any]:
        if not self.parts:
            await asyncio.sleep(3600)  # a client that sent everything waits for the answer
        part = self.parts.pop(0)
        self.taken += len(part)
        return {"type": "http.request", "body": part, "more_body": bool(self.parts)}


async def call(app: Any, method: str, path: str, feed: Feed, *,
               headers: dict[str, str] | None = None, query: bytes = b"") -> tuple[int, Any]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": query, "root_path": "", "client": ("127.0.0.1", 5000),
             "server": ("test", 80), "state": {},
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}
    await asyncio.wait_for(app(scope, feed, send), 60)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, orjson.loads(content) if content else None


def assert_too_large(status: int, answer: Any, limit: int, variable: str) -> None:
    assert status == 413, (status, answer)
    error = answer["error"]
    assert error["code"] == "payload_too_large"
    assert f"{limit:,} bytes" in error["message"], error
    assert variable in error["fix"], error


async def test_a_big_body_without_a_token_is_refused_before_it_is_read(
    small: Container,
) -> None:
    w = await world(small)
    app = create_app(small)
    feed = Feed(BIG)
    status, answer = await call(app, "POST", f"/v1/orgs/{w.org_id}/people", feed,
                                headers={"content-type": "application/json"})
    assert (status, answer["error"]["code"]) == (401, "unauthorized")
    assert feed.taken == 0
    # a token of another org: 404, still without reading
    other = await world(small)
    feed = Feed(BIG)
    status, _ = await call(app, "POST", f"/v1/orgs/{w.org_id}/people", feed,
                           headers={"content-type": "application/json",
                                    "authorization": f"Bearer {other.admin_token}"})
    assert (status, feed.taken) == (404, 0)


async def test_an_admin_route_stops_reading_at_its_limit(small: Container) -> None:
    w = await world(small)
    app = create_app(small)
    auth = {"authorization": f"Bearer {w.admin_token}", "content-type": "application/json"}
    feed = Feed(BIG)
    status, answer = await call(app, "POST", f"/v1/orgs/{w.org_id}/people", feed, headers=auth)
    assert_too_large(status, answer, ADMIN_LIMIT, "CLARION_ADMIN_MAX_BODY_BYTES")
    assert feed.taken <= ADMIN_LIMIT + CHUNK + 16
    # announced: refused before a byte is read, token or not
    for headers in (auth, {"content-type": "application/json"}):
        feed = Feed(BIG)
        status, answer = await call(app, "POST", f"/v1/orgs/{w.org_id}/people", feed,
                                    headers={**headers, "content-length": str(BIG)})
        assert_too_large(status, answer, ADMIN_LIMIT, "CLARION_ADMIN_MAX_BODY_BYTES")
        assert feed.taken == 0


async def test_the_odata_routes_refuse_an_announced_big_body(small: Container) -> None:
    w = await world(small)
    app = create_app(small)
    feed = Feed(BIG)
    status, answer = await call(app, "GET", "/api/data/v9.0/contacts", feed,
                                headers={"authorization": f"Bearer {w.admin_token}",
                                         "content-length": str(BIG)})
    assert_too_large(status, answer, ADMIN_LIMIT, "CLARION_ADMIN_MAX_BODY_BYTES")
    assert feed.taken == 0
    # without a token: 401, nothing read
    feed = Feed(BIG)
    status, _ = await call(app, "GET", "/api/data/v9.0/contacts", feed)
    assert (status, feed.taken) == (401, 0)


def _registration(w: World) -> str:
    return f"/api/v1.0/orgs/{w.org_id}/pushdeviceregistration"


@pytest.mark.parametrize("announced", [True, False])
async def test_the_registration_fast_path_answers_413_at_its_limit(
    small: Container, announced: bool,
) -> None:
    w = await world(small)
    app = create_app(small)
    feed = Feed(BIG, prefix=b'{"UserId": "')
    headers = {"content-length": str(BIG)} if announced else {}
    status, answer = await call(app, "POST", f"{_registration(w)}/devices", feed,
                                headers=headers)
    assert_too_large(status, answer, LIMIT, "CLARION_MAX_BODY_BYTES")
    assert feed.taken <= (0 if announced else LIMIT + CHUNK + 16)


async def test_every_registration_route_answers_413_at_the_same_limit(
    small: Container,
) -> None:
    """The batch fast path and the routes FastAPI serves (status, cleanup) too."""
    w = await world(small)
    app = create_app(small)
    for tail in ("devices/batch", "devices/status/", "devices/cleanup",
                 "devices/cleanup/batch"):
        feed = Feed(BIG, prefix=b'[{"UserId": "')
        status, answer = await call(app, "POST", f"{_registration(w)}/{tail}", feed)
        assert_too_large(status, answer, LIMIT, "CLARION_MAX_BODY_BYTES")
        assert feed.taken <= LIMIT + CHUNK + 16, tail


@pytest.mark.parametrize("announced", [True, False])
async def test_the_events_fast_path_answers_413_at_its_limit(
    small: Container, announced: bool,
) -> None:
    w = await world(small)
    app = create_app(small)
    for path in (f"/api/v1.0/orgs/{w.org_id}/pushdatareceiver/events",
                 f"/api/v1.0/orgs/{w.org_id}/pushchannel/event/trackings/"
                 "3f2504e0-4f89-11d3-9a0c-0305e82c3301"):
        feed = Feed(BIG, prefix=b'{"DeviceToken": "')
        headers = {"content-length": str(BIG)} if announced else {}
        status, answer = await call(app, "POST", path, feed, headers=headers)
        assert_too_large(status, answer, EVENTS_LIMIT, "CLARION_EVENTS_MAX_BODY_BYTES")
        assert feed.taken <= (0 if announced else EVENTS_LIMIT + CHUNK + 16)


async def test_a_body_at_the_limit_is_read(small: Container) -> None:
    """The limit is inclusive: a body of exactly the limit is processed, one more byte is 413."""
    w = await world(small)
    transport = httpx.ASGITransport(app=create_app(small))
    auth = {"authorization": f"Bearer {w.admin_token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        shell = orjson.dumps({"first_name": "", "attributes": {"note": ""}})
        pad = ADMIN_LIMIT - len(shell)
        exact = orjson.dumps({"first_name": "", "attributes": {"note": " " * pad}})
        assert len(exact) == ADMIN_LIMIT
        r = await http.post(f"/v1/orgs/{w.org_id}/people", content=exact,
                            headers={**auth, "content-type": "application/json"})
        assert r.status_code == 400, r.text  # read and parsed: the note is too long, not 413
        assert r.json()["error"]["field"] == "attributes"
        r = await http.post(f"/v1/orgs/{w.org_id}/people", content=exact + b" ",
                            headers={**auth, "content-type": "application/json"})
        assert r.status_code == 413, r.text


def test_every_route_that_takes_input_goes_through_the_intake() -> None:
    """New routes get the limits, the early authentication and the text rule only through
    the route class: every router of clarion.api.routes must use it for such routes."""
    import clarion.api.routes as package

    checked = 0
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for route in module.router.routes:
            assert isinstance(route, APIRoute)
            takes_input = route.body_field is not None or any(
                (route.dependant.path_params, route.dependant.query_params,
                 route.dependant.header_params))
            # Tracked links verify their HMAC-signed token before any lookup, and a broken
            # link gets an HTML page: they keep FastAPI's plain route.
            if takes_input and not route.path.startswith("/l/"):
                assert isinstance(route, CheckedRoute), (info.name, route.path)
                checked += 1
    assert checked >= 30
