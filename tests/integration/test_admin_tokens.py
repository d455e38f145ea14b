"""Admin tokens: issued, listed (never their values), revoked at once, one org at a time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from typer.testing import CliRunner

from clarion.bootstrap import Container, build
from clarion.errors import Unauthorized
from clarion.store.migrate import upgrade
from tests.conftest import TEST_SECRET, make_settings

T = TypeVar("T")

pytestmark = pytest.mark.integration


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_issue_list_revoke_over_rest(container: Container,
                                           client: httpx.AsyncClient) -> None:
    c = container
    org = await c.orgs.create("A")
    other = await c.orgs.create("B")
    base = f"/v1/orgs/{org.id}/admin-tokens"
    r = await client.post(base, json={"name": "ci-deploy"}, headers=bearer(org.admin_token))
    assert r.status_code == 201, r.text
    second = r.json()
    assert second["admin_token"].startswith("clr_adm")
    assert (await client.get(f"/v1/orgs/{org.id}", headers=bearer(second["admin_token"]))) \
        .status_code == 200
    listed = (await client.get(base, headers=bearer(org.admin_token))).json()["items"]
    assert [x["name"] for x in listed] == ["admin", "ci-deploy"]
    assert org.admin_token not in json.dumps(listed)
    assert second["admin_token"] not in json.dumps(listed)
    assert all("admin_token" not in x for x in listed)
    first_id = listed[0]["id"]
    # Another org can neither see nor revoke them (nor learn that the org exists).
    assert (await client.get(base, headers=bearer(other.admin_token))).status_code == 404
    assert (await client.delete(f"{base}/{first_id}", headers=bearer(other.admin_token))) \
        .status_code == 404
    assert (await client.delete(f"/v1/orgs/{other.id}/admin-tokens/{first_id}",
                                headers=bearer(other.admin_token))).status_code == 404
    # Revoked with the second token: the first stops working at once.
    r = await client.delete(f"{base}/{first_id}", headers=bearer(second["admin_token"]))
    assert r.status_code == 204, r.text
    r = await client.get(f"/v1/orgs/{org.id}", headers=bearer(org.admin_token))
    assert r.status_code == 401
    listed = (await client.get(base, headers=bearer(second["admin_token"]))).json()["items"]
    assert listed[0]["revoked_at"] is not None and listed[1]["revoked_at"] is None
    # The last active token cannot be revoked over REST (the org would lock itself out).
    r = await client.delete(f"{base}/{second['id']}", headers=bearer(second["admin_token"]))
    assert r.status_code == 409
    assert "clarion orgs token" in r.json()["error"]["fix"]
    r = await client.delete(f"{base}/not-a-token", headers=bearer(second["admin_token"]))
    assert r.status_code == 404
    r = await client.post(base, json={"name": ""}, headers=bearer(second["admin_token"]))
    assert r.status_code == 422


def test_the_cli_lists_and_revokes_even_the_last_token(
        sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from clarion.cli.main import app

    async def with_container(fn: Callable[[Container], Awaitable[T]]) -> T:
        c = build(make_settings(sqlite_url, tmp_path))
        await c.start()
        try:
            return await fn(c)
        finally:
            await c.close()

    upgrade(sqlite_url)
    org = asyncio.run(with_container(lambda c: c.orgs.create("A")))
    monkeypatch.setenv("CLARION_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CLARION_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("CLARION_VAR_DIR", str(tmp_path / "var"))
    runner = CliRunner()
    out = runner.invoke(app, ["orgs", "tokens", "--org", org.id, "--json"])
    assert out.exit_code == 0, out.output
    tokens = json.loads(out.stdout)
    assert [x["name"] for x in tokens] == ["admin"]
    out = runner.invoke(app, ["orgs", "revoke-token", "--org", org.id, "--id", tokens[0]["id"],
                              "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["revoked_at"] is not None
    with pytest.raises(Unauthorized, match="unknown or revoked"):
        asyncio.run(with_container(lambda c: c.orgs.authenticate_admin(org.admin_token)))
    out = runner.invoke(app, ["orgs", "token", "--org", org.id, "--name", "rescue", "--json"])
    assert out.exit_code == 0, out.output
    made = json.loads(out.stdout)
    assert asyncio.run(with_container(
        lambda c: c.orgs.authenticate_admin(made["admin_token"]))) == org.id
