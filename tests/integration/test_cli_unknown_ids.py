"""An unknown or mistyped organization, app or person is an error in every CLI command (exit
code 1, the message on one line and the fix on the next), and the API agrees; an empty listing
says so instead of printing an empty table.

The commands are found by walking the CLI itself: every command that takes ``--org``, ``--app``,
``--user`` or ``--person`` is run, so a command added later is covered (or this test names it
and asks for its arguments below).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from clarion.bootstrap import Container, build
from clarion.cli.main import app as cli
from clarion.cli.session import console
from clarion.store.migrate import upgrade
from tests.conftest import TEST_SECRET, make_settings

pytestmark = pytest.mark.integration

UNKNOWN_ORG = "6f1c0b7e-0000-4000-8000-00000000dead"
UNKNOWN_APP = "a99c0b7e-0000-4000-8000-00000000dead"
UNKNOWN_PERSON = "b0b00b7e-0000-4000-8000-00000000dead"
ID_OPTIONS = {"--org", "--app", "--user", "--person"}


@dataclass
class Known:
    org: str
    app: str
    person: str
    empty_org: str  # an org with nothing in it
    config: str  # an app configuration file
    people_file: str
    message: str = ""  # a push message of the org
    message_file: str = ""
    journey_file: str = ""


@pytest.fixture
def known(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Known:
    async def prepare() -> Known:
        await asyncio.to_thread(upgrade, sqlite_url)
        c = build(make_settings(sqlite_url, tmp_path))
        await c.start()
        try:
            org = await c.orgs.create("Contoso")
            empty = await c.orgs.create("Empty")
            doc = {"name": "Web", "web": {"vapid_subject": "mailto:ops@contoso.com"}}
            created = await c.apps.create(org.id, doc)
            person = await c.people.create(org.id, {"email": "ada@contoso.com"})
            from clarion.domain.push_messages import parse_push_message

            message = {"name": "Hi", "app_id": created.app.id, "title": "Hi"}
            stored = await c.messages.create(org.id, parse_push_message(message))
            return Known(org.id, created.app.id, person.id, empty.id, json.dumps(doc), "",
                         stored.id, json.dumps(message))
        finally:
            await c.close()

    k = asyncio.run(prepare())
    config = tmp_path / "app.json"
    config.write_text(k.config)
    people = tmp_path / "people.csv"
    people.write_text("email\nbob@contoso.com\n")
    k.config, k.people_file = str(config), str(people)
    message = tmp_path / "message.json"
    message.write_text(k.message_file)
    k.message_file = str(message)
    journey = tmp_path / "journey.json"
    journey.write_text(json.dumps({
        "name": "J", "app_id": k.app, "entry": {"type": "trigger", "trigger": "t"},
        "steps": [{"id": "s", "type": "end"}]}))
    k.journey_file = str(journey)
    monkeypatch.setenv("CLARION_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CLARION_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("CLARION_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(console, "width", 100)  # narrow: the lines must not wrap anyway
    return k


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every leaf command of the CLI (Typer's click groups and commands)."""
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def _id_options(command: Any) -> set[str]:
    return {opt for p in command.params for opt in getattr(p, "opts", []) if opt in ID_OPTIONS}


def _extra(path: tuple[str, ...], k: Known) -> list[str]:
    """What each command needs besides the ids to get as far as looking them up."""
    extra = {
        ("apps", "create"): ["--config", k.config],
        ("apps", "update"): ["--config", k.config],
        ("apps", "delete"): ["--yes"],
        ("apps", "tokens", "revoke"): ["--token", UNKNOWN_APP],
        ("orgs", "revoke-token"): ["--id", UNKNOWN_APP],
        ("contacts", "import"): [k.people_file],
        ("contacts", "show"): [k.person],
        ("devices", "registration"): [UNKNOWN_APP],
        ("send",): ["--title", "Hello"],
        ("messages", "create"): ["--file", k.message_file],
        ("messages", "show"): ["--id", k.message],
        ("messages", "preview"): ["--id", k.message],
        ("messages", "test"): ["--id", k.message],
        ("consent", "import"): [k.people_file],
        ("consent", "set"): ["--opted-out"],
        ("segments", "create"): ["Gold", "--filter", "tier eq 'gold'"],
        ("segments", "show"): [UNKNOWN_APP],
        ("segments", "size"): [UNKNOWN_APP],
        ("segments", "import"): [UNKNOWN_APP, k.people_file],
        ("triggers", "create"): ["cart_abandoned"],
        ("triggers", "fire"): ["cart_abandoned"],
        **{("journeys", c): ["--file", k.journey_file] for c in ("create", "validate")},
        **{("journeys", c): ["--journey", UNKNOWN_APP]
           for c in ("show", "start", "pause", "resume", "stop", "report")},
    }
    return extra.get(path, [])


def _args(path: tuple[str, ...], options: set[str], k: Known, *, org: str, app: str,
          person: str) -> list[str]:
    args = [*path]
    values = {"--org": org, "--app": app, "--user": person, "--person": person}
    for option in sorted(options):
        args += [option, values[option]]
    return args + _extra(path, k)


def _assert_refused(runner: CliRunner, args: list[str], *words: str) -> None:
    out = runner.invoke(cli, args)
    lines = out.output.strip().splitlines()
    assert out.exit_code == 1, (args, out.output)
    lines = lines[next((i for i, line in enumerate(lines) if line.startswith("error: ")), 0):]
    assert lines[0].startswith("error: ") and all(w in lines[0] for w in words), (args, lines)
    # The fix is on a line of its own, whole (never wrapped), and names what to run.
    assert len(lines) == 2 and lines[1].startswith("fix: ") and "clarion " in lines[1], (
        args, lines)


def test_every_command_refuses_an_unknown_org_app_or_person(known: Known) -> None:
    runner = CliRunner()
    commands = [(path, _id_options(cmd)) for path, cmd in
                _commands(typer.main.get_command(cli))]
    commands = [(path, options) for path, options in commands if options]
    assert len(commands) >= 20, commands  # the walk found the commands
    for path, options in commands:
        _assert_refused(runner, _args(path, options, known, org=UNKNOWN_ORG, app=known.app,
                                      person=known.person),
                        f"organization {UNKNOWN_ORG} does not exist")
        if "--app" in options and path != ("apps", "create"):
            _assert_refused(runner, _args(path, options, known, org=known.org, app=UNKNOWN_APP,
                                          person=known.person),
                            f"app {UNKNOWN_APP} does not exist in organization {known.org}")
        if options & {"--user", "--person"}:
            _assert_refused(runner, _args(path, options, known, org=known.org, app=known.app,
                                          person=UNKNOWN_PERSON), UNKNOWN_PERSON)
    # Ids read from arguments, not options.
    _assert_refused(runner, ["contacts", "show", "--org", known.org, UNKNOWN_PERSON],
                    f"person {UNKNOWN_PERSON} does not exist in organization {known.org}")


async def test_the_api_agrees(container: Container, client: httpx.AsyncClient) -> None:
    """The checks live in the services: the REST API answers 404 naming the unknown app or
    person, on SQLite and PostgreSQL (an unknown org is the token's 404 there)."""
    org = await container.orgs.create("Contoso")
    auth = {"authorization": f"Bearer {org.admin_token}"}
    for path, what in [(f"apps/{UNKNOWN_APP}/devices", f"app {UNKNOWN_APP}"),
                       (f"people/{UNKNOWN_PERSON}/devices", f"person {UNKNOWN_PERSON}"),
                       (f"people/{UNKNOWN_PERSON}/timeline", f"person {UNKNOWN_PERSON}"),
                       (f"reports?scope=app&id={UNKNOWN_APP}", f"app {UNKNOWN_APP}")]:
        r = await client.get(f"/v1/orgs/{org.id}/{path}", headers=auth)
        assert r.status_code == 404, (path, r.text)
        assert what in r.json()["error"]["message"], r.text
    r = await client.get(f"/v1/orgs/{org.id}/apps", headers=auth)
    assert r.status_code == 200 and r.json() == []  # an org without apps: an empty list


def test_empty_listings_say_so(known: Known) -> None:
    runner = CliRunner()
    empty = known.empty_org
    for args, words in [
            (["apps", "list", "--org", empty], f"No apps in organization {empty}"),
            (["messages", "list", "--org", empty], f"No messages in organization {empty}"),
            (["contacts", "list", "--org", empty], f"No people in organization {empty}"),
            (["contacts", "list", "--org", known.org, "--email", "nobody@contoso.com"],
             "with email nobody@contoso.com"),
            (["devices", "list", "--org", known.org, "--app", known.app],
             f"No devices for app {known.app}"),
            (["devices", "list", "--org", known.org, "--user", known.person, "--state",
              "invalid"], f"No invalid devices for person {known.person}"),
            (["reports", "timeline", "--org", known.org, "--person", known.person],
             f"Nothing yet for person {known.person}"),
            (["segments", "list", "--org", empty], f"No segments in organization {empty}"),
            (["triggers", "list", "--org", empty], f"No triggers in organization {empty}")]:
        out = runner.invoke(cli, args)
        assert out.exit_code == 0, (args, out.output)
        assert words in out.output and "┏" not in out.output, (args, out.output)
        # --json keeps printing the (empty) document
        out = runner.invoke(cli, [*args, "--json"])
        assert out.exit_code == 0 and json.loads(out.stdout) in ([], {"items": [],
                                                                     "next_cursor": None})
