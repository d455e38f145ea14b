"""`clarion messages create|list|show|preview|test` on a SQLite database."""

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


def test_messages_commands(sqlite_url: str, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    async def prepare() -> tuple[str, str, str]:
        await asyncio.to_thread(upgrade, sqlite_url)
        c = build(make_settings(sqlite_url, tmp_path))
        await c.start()
        try:
            org = await c.orgs.create("Contoso")
            app = await c.apps.create(org.id, {"name": "Web", "web": {
                "vapid_subject": "mailto:ops@contoso.com"}})
            person = await c.people.create(org.id, {"first_name": "Ann",
                                                    "attributes": {"tier": "gold"}})
            return org.id, app.app.id, person.id
        finally:
            await c.close()

    org, app_id, person = asyncio.run(prepare())
    monkeypatch.setenv("CLARION_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CLARION_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("CLARION_VAR_DIR", str(tmp_path / "var"))
    doc = {"name": "Welcome", "app_id": app_id, "title": "Welcome, {{FirstName}}",
           "body": "{{#if Tier}}Your {{Tier}} perks{{else}}Hello{{/if}}",
           "placeholders": {"FirstName": {"source": "audience", "field": "first_name"},
                            "Tier": {"source": "audience", "field": "tier"}}}
    file = tmp_path / "welcome.json"
    file.write_text(json.dumps(doc))
    runner = CliRunner()
    out = runner.invoke(cli, ["messages", "create", "--org", org, "--file", str(file),
                              "--json"])
    assert out.exit_code == 0, out.output
    message_id = json.loads(out.stdout)["id"]
    out = runner.invoke(cli, ["messages", "list", "--org", org, "--json"])
    assert [m["id"] for m in json.loads(out.stdout)] == [message_id]
    out = runner.invoke(cli, ["messages", "show", "--org", org, "--id", message_id, "--json"])
    assert json.loads(out.stdout)["title"] == doc["title"]
    out = runner.invoke(cli, ["messages", "preview", "--org", org, "--id", message_id,
                              "--user", person, "--json"])
    assert out.exit_code == 0, out.output
    preview = json.loads(out.stdout)
    assert (preview["message"]["title"], preview["message"]["body"]) == (
        "Welcome, Ann", "Your gold perks")
    assert [p["platform"] for p in preview["platforms"]] == ["ios", "android", "web"]
    out = runner.invoke(cli, ["messages", "test", "--org", org, "--id", message_id,
                              "--user", person, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["message"]["test"] is True
    file.write_text(json.dumps({**doc, "title": "Hi {{Nobody}}"}))
    out = runner.invoke(cli, ["messages", "create", "--org", org, "--file", str(file)])
    assert out.exit_code == 1
    assert "title" in out.output and "'Nobody'" in out.output and "column 4" in out.output
