"""`clarion journeys …` end to end on SQLite: create from a file, every problem of a bad file
on its own line, the life cycle, the report as a terminal chart, CSV and JSON."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clarion.bootstrap import build
from clarion.cli.main import app as cli
from clarion.cli.session import console
from clarion.store.migrate import upgrade
from tests.conftest import TEST_SECRET, make_settings
from tests.factories import World, world
from tests.integration.test_journeys_api import _run_people
from tests.unit.test_journey_document import EXAMPLE

pytestmark = pytest.mark.integration


def test_journeys_from_the_command_line(sqlite_url: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    async def prepare() -> World:
        await asyncio.to_thread(upgrade, sqlite_url)
        c = build(make_settings(sqlite_url, tmp_path))
        await c.start()
        try:
            return await world(c)
        finally:
            await c.close()

    w = asyncio.run(prepare())
    monkeypatch.setenv("CLARION_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CLARION_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("CLARION_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(console, "width", 140)
    runner = CliRunner()
    doc = copy.deepcopy(EXAMPLE)
    doc["app_id"] = w.app_id
    good = tmp_path / "journey.json"
    good.write_text(json.dumps(doc))
    doc["steps"][1]["within"] = "P1Y"
    doc["steps"][2]["next"] = "nowhere"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))

    out = runner.invoke(cli, ["journeys", "validate", "--org", w.org_id, "--file", str(good)])
    assert out.exit_code == 0, out.output
    assert "valid" in out.output
    for command in ("validate", "create"):
        out = runner.invoke(cli, ["journeys", command, "--org", w.org_id, "--file", str(bad)])
        assert out.exit_code == 1, out.output
        assert "error: step opened, within:" in out.output
    out = runner.invoke(cli, ["journeys", "validate", "--org", w.org_id, "--file", str(bad),
                              "--json"])
    assert json.loads(out.stdout)["valid"] is False

    out = runner.invoke(cli, ["journeys", "create", "--org", w.org_id, "--file", str(good),
                              "--json"])
    assert out.exit_code == 0, out.output
    journey_id = json.loads(out.stdout)["id"]
    ids = ["--org", w.org_id, "--journey", journey_id]
    out = runner.invoke(cli, ["journeys", "pause", *ids])
    assert out.exit_code == 1
    assert "cannot pause: it has not started" in out.output
    out = runner.invoke(cli, ["journeys", "start", *ids])
    assert out.exit_code == 0, out.output
    assert "is live" in out.output
    out = runner.invoke(cli, ["journeys", "show", *ids])
    assert "wait_for_interaction" in out.output

    async def people() -> None:
        c = build(make_settings(sqlite_url, tmp_path))
        try:
            await _run_people(c, w, journey_id)
        finally:
            await c.close()

    asyncio.run(people())
    out = runner.invoke(cli, ["journeys", "report", *ids])
    assert out.exit_code == 0, out.output
    hello = next(line for line in out.output.splitlines() if " hello " in line)
    assert "█" in hello
    assert "4 entered, 1 inside" in out.output
    out = runner.invoke(cli, ["journeys", "report", *ids, "--csv"])
    assert out.stdout.splitlines()[1] == "hello,push,4,0,4,0,,0,0,0,0,0,0,0,,,"
    out = runner.invoke(cli, ["journeys", "report", *ids, "--json"])
    assert [s["id"] for s in json.loads(out.stdout)["steps"]] == [
        "hello", "opened", "nudge", "tier", "perks"]
    out = runner.invoke(cli, ["journeys", "list", "--org", w.org_id])
    assert journey_id in out.output
