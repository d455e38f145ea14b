"""Tracked links on SQLite and PostgreSQL: a click is recorded and redirected to the original
link; anything forged, tampered, unknown or deleted gets a 404 page and never a redirect."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import delete, select, update

from clarion.api.app import create_app
from clarion.bootstrap import Container
from clarion.domain import links
from clarion.providers.fake import FakeSender
from clarion.store import tables as t
from tests.integration.test_interactions import interactions, report, rolled, sent_world

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with container.db.write_engine.begin() as conn:  # see test_interactions.schema
        await conn.run_sync(t.metadata.create_all, checkfirst=True)
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                 follow_redirects=False) as c:
        yield c


def assert_not_valid(r: httpx.Response) -> None:
    assert r.status_code == 404
    assert "location" not in r.headers
    assert r.headers["content-type"].startswith("text/html")
    assert "This link is not valid" in r.text


async def test_a_link_redirects_to_the_original_and_counts_one_unique_click(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)
    path = s.links[s.fcm]
    first, second = await client.get(path), await client.get(path)
    for r in (first, second):  # a repeated click still redirects
        assert r.status_code == 302
        assert r.headers["location"] == "https://contoso.com/offer?id=7"
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["referrer-policy"] == "no-referrer"
    rows = await interactions(container)
    assert [(r.kind, r.source, r.first, r.delivery_id) for r in rows] == [
        ("clicked", "link", True, s.deliveries[s.fcm]),
        ("clicked", "link", False, s.deliveries[s.fcm])]
    # The app reporting the same click (status 0) is one more click, still one unique.
    assert (await report(client, s, s.fcm, 0)).status_code == 202
    # Another device of the same person: a second unique device, still one person.
    assert (await client.get(s.links[s.ios])).status_code == 302
    assert await rolled(container, s.send_id) == {
        "clicked": 4, "unique_clicked_devices": 2, "unique_clicked_people": 1,
        "unique_engaged_people": 1}


async def test_head_answers_the_same_without_recording(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)
    r = await client.head(s.links[s.web])
    assert r.status_code == 302
    assert r.headers["location"] == "https://contoso.com/offer?id=7"
    assert_not_valid(await client.get("/l/" + "A" * links.TOKEN_LENGTH))
    assert (await client.head("/l/" + "A" * links.TOKEN_LENGTH)).status_code == 404
    assert await interactions(container) == []


async def test_forged_tampered_and_unknown_links_get_a_404_page(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)
    token = s.links[s.fcm].rsplit("/", 1)[1]
    tampered = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    forged = links.sign(b"not-the-server-key" * 2, s.deliveries[s.fcm])
    unknown = links.sign(container.link_key, str(uuid.uuid4()))  # signed, no such delivery
    for bad in (tampered, forged, unknown, "short", token + "x", "%2F%2Fevil.example"):
        assert_not_valid(await client.get(f"/l/{bad}"))
    assert await interactions(container) == []
    # Nothing in the request can choose the target: a query string is ignored.
    r = await client.get(f"/l/{token}?next=https://evil.example&url=https://evil.example")
    assert r.headers["location"] == "https://contoso.com/offer?id=7"


async def test_a_link_of_a_deleted_send_is_not_valid(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)
    async with container.db.write() as conn:
        await conn.execute(delete(t.deliveries).where(t.deliveries.c.send_id == s.send_id))
        await conn.execute(delete(t.sends).where(t.sends.c.id == s.send_id))
    assert_not_valid(await client.get(s.links[s.fcm]))
    assert await interactions(container) == []


async def _store_link(c: Container, send_id: str, link: str) -> None:
    async with c.db.write() as conn:
        message = (await conn.execute(select(t.sends.c.message).where(
            t.sends.c.id == send_id))).scalar_one()
        await conn.execute(update(t.sends).where(t.sends.c.id == send_id).values(
            message={**message, "link": link}))


async def test_app_links_redirect_and_unsafe_stored_links_never_do(
    container: Container, client: httpx.AsyncClient, fake_sender: FakeSender
) -> None:
    s = await sent_world(container, client, fake_sender)
    await _store_link(container, s.send_id, "contoso://orders/42")
    r = await client.get(s.links[s.ios])
    assert r.status_code == 302
    assert r.headers["location"] == "contoso://orders/42"
    for unsafe in ("javascript:alert(document.cookie)", "data:text/html,<script>x</script>",
                   ""):
        await _store_link(container, s.send_id, unsafe)
        assert_not_valid(await client.get(s.links[s.ios]))
    assert len(await interactions(container)) == 1  # only the valid click
