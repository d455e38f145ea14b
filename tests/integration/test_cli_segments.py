"""`clarion segments …` and `clarion triggers …` as a user runs them (SQLite)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clarion.bootstrap import build
from clarion.cli.main import app as cli
from clarion.store.migrate import upgrade
from tests.conftest import TEST_SECRET, make_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def org(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    async def prepare() -> tuple[str, str]:
        await asyncio.to_thread(upgrade, sqlite_url)
        c = build(make_settings(sqlite_url, tmp_path))
        await c.start()
        try:
            org = await c.orgs.create("Contoso")
            person = await c.people.create(org.id, {"email": "ana@contoso.com",
                                                    "attributes": {"tier": "gold"}})
            await c.people.create(org.id, {"email": "bo@contoso.com",
                                           "attributes": {"tier": "bronze"}})
            return org.id, person.id
        finally:
            await c.close()

    monkeypatch.setenv("CLARION_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CLARION_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("CLARION_VAR_DIR", str(tmp_path / "var"))
    return asyncio.run(prepare())


def _json(args: list[str]) -> object:
    out = CliRunner().invoke(cli, [*args, "--json"])
    assert out.exit_code == 0, (args, out.output)
    return json.loads(out.stdout)


def test_segments(org: tuple[str, str], tmp_path: Path) -> None:
    org_id, ana = org
    gold = _json(["segments", "create", "--org", org_id, "Gold", "--filter", "tier eq 'gold'"])
    assert isinstance(gold, dict) and gold["kind"] == "dynamic"
    assert _json(["segments", "size", "--org", org_id, gold["id"]]) == {"count": 1,
                                                                       "sample": [ana]}
    vips = _json(["segments", "create", "--org", org_id, "VIPs", "--static"])
    assert isinstance(vips, dict)
    members = tmp_path / "vips.csv"
    members.write_text("email\nANA@contoso.com\nnobody@contoso.com\n")
    assert _json(["segments", "import", "--org", org_id, vips["id"], str(members)]) == {
        "added": 1, "already": 0, "unknown": ["nobody@contoso.com"], "unknown_count": 1}
    listed = _json(["segments", "list", "--org", org_id])
    assert isinstance(listed, list) and {s["name"] for s in listed} == {"Gold", "VIPs"}
    assert _json(["segments", "show", "--org", org_id, vips["id"]]) == next(
        s for s in listed if s["name"] == "VIPs")
    bad = CliRunner().invoke(cli, ["segments", "create", "--org", org_id, "x", "--filter",
                                   "tier eq"])
    assert bad.exit_code == 1 and "position 8" in bad.output


def test_triggers(org: tuple[str, str]) -> None:
    org_id, ana = org
    created = _json(["triggers", "create", "--org", org_id, "cart_abandoned",
                     "--attribute", "cart_total=number"])
    assert isinstance(created, dict) and created["attributes"] == {"cart_total": "number"}
    args = ["triggers", "fire", "--org", org_id, "cart_abandoned", "--user", ana,
            "--data", '{"cart_total": 72.5}', "--idempotency-key", "k1"]
    first, again = _json(args), _json(args)
    assert isinstance(first, dict) and isinstance(again, dict)
    assert first["created"] and not again["created"] and first["id"] == again["id"]
    assert [t["name"] for t in _json(["triggers", "list", "--org", org_id])] == [  # type: ignore[union-attr]
        "cart_abandoned"]
    bad = CliRunner().invoke(cli, ["triggers", "fire", "--org", org_id, "cart_abandoned",
                                   "--user", ana, "--data", '{"cart_total": "x"}'])
    assert bad.exit_code == 1 and "cart_total must be a number" in bad.output
