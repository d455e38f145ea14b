"""`clarion journeys …`: create, validate, start, pause, resume, stop, show, report.

Thin: read the document file, call one method of the ``Journeys`` service, print. ``--json``
prints machine-readable output on stdout; the human form goes to the console (stderr).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from clarion.cli.charts import bar
from clarion.cli.session import console, emit_json, run
from clarion.errors import InvalidInput

if TYPE_CHECKING:
    from clarion.bootstrap import Container
    from clarion.domain.journeys.document import Problem
    from clarion.domain.journeys.records import JourneyRead, JourneyReport

app = typer.Typer(help="Journeys: documents that send pushes to a segment or to whoever fires "
                  "a trigger, wait, and branch on what each person did (docs/journeys.md).",
                  no_args_is_help=True)

Org = Annotated[str, typer.Option("--org", help="Organization id.")]
JourneyId = Annotated[str, typer.Option("--journey", help="Journey id.")]
File = Annotated[str, typer.Option("--file", help="The journey document (JSON; a file path, "
                                   "or - for stdin).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def _read(source: str) -> Any:
    fix = ("Give --file a JSON journey document; docs/journeys.md has the format and a worked "
           "example (`clarion journeys validate --org <org> --file journey.json` checks it).")
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {source}: {exc.strerror or exc}", fix=fix,
                           field="--file") from exc
    from clarion.domain import text as json_text

    try:
        return json_text.loads(text, what="stdin" if source == "-" else source, fix=fix)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, fix=exc.fix, field="--file") from exc


def _problems(problems: list[Problem]) -> None:
    for p in problems:
        where = f"step {p.step}, " if p.step is not None else ""
        console.print(f"[red]error:[/red] {escape(where + p.field)}: {escape(p.message)}",
                      soft_wrap=True)


def _show(j: JourneyRead) -> None:
    table = Table(title=f"{j.name}  ({j.id})", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("state", j.state)
    table.add_row("version", f"{j.version} (people enter version {j.live_version})"
                  if j.live_version is not None else str(j.version))
    table.add_row("app", j.app_id)
    entry = j.document.get("entry") or {}
    table.add_row("entry", ", ".join(f"{k}={v}" for k, v in entry.items()))
    for step in j.document.get("steps") or []:
        details = ", ".join(f"{k}={v}" for k, v in step.items() if k not in ("id", "type"))
        table.add_row(f"  {step.get('id')}", escape(f"{step.get('type')}: {details}"))
    console.print(table)


def _document_command(org: str, file: str, as_json: AsJson, *, validate_only: bool) -> None:
    from clarion.domain.journeys.validation import JourneyInvalid

    async def _do(c: Container) -> tuple[JourneyRead | None, list[Problem]]:
        document = _read(file)
        if validate_only:
            return None, await c.journeys.validate(org, document)
        try:
            return await c.journeys.create(org, document), []
        except JourneyInvalid as exc:
            return None, exc.problems

    journey, problems = run(_do)
    if as_json:
        emit_json(journey.as_dict() if journey is not None else
                  {"valid": not problems, "errors": [p.as_dict() for p in problems]})
    if problems:
        if not as_json:
            _problems(problems)
            console.print(f"[bold]fix:[/bold] correct the {len(problems)} problem(s) above "
                          "(each names the step id and the field); docs/journeys.md describes "
                          "the format.", soft_wrap=True)
        raise typer.Exit(1)
    if as_json:
        return
    if journey is None:
        console.print("The journey document is valid.")
        return
    _show(journey)
    console.print(f"Journey created (draft): id {journey.id}", markup=False)
    console.print(f"Next: clarion journeys start --org {org} --journey {journey.id}",
                  markup=False)


@app.command("create")
def create(org: Org, file: File, as_json: AsJson = False) -> None:
    """Create a journey from a document (state draft, version 1)."""
    _document_command(org, file, as_json, validate_only=False)


@app.command("validate")
def validate(org: Org, file: File, as_json: AsJson = False) -> None:
    """Check a journey document without storing it: every problem, with its step and field."""
    _document_command(org, file, as_json, validate_only=True)


@app.command("list")
def list_(org: Org, as_json: AsJson = False) -> None:
    """The organization's journeys."""

    async def _do(c: Container) -> list[JourneyRead]:
        return await c.journeys.of_org(org)

    rows = run(_do)
    if as_json:
        emit_json([j.as_dict() for j in rows])
        return
    if not rows:
        console.print(f"No journeys in organization {org}: create one with `clarion journeys "
                      f"create --org {org} --file journey.json`.", markup=False)
        return
    table = Table("id", "name", "state", "version")
    for j in rows:
        table.add_row(j.id, escape(j.name), j.state, str(j.version))
    console.print(table)


@app.command("show")
def show(org: Org, journey: JourneyId, as_json: AsJson = False) -> None:
    """A journey: state, versions and its steps."""

    async def _do(c: Container) -> JourneyRead:
        return await c.journeys.get(org, journey)

    found = run(_do)
    if as_json:
        emit_json(found.as_dict())
        return
    _show(found)


def _move(action: str, org: str, journey: str, as_json: bool) -> None:
    async def _do(c: Container) -> JourneyRead:
        return await c.journeys.move(org, journey, action)

    moved = run(_do)
    if as_json:
        emit_json(moved.as_dict())
        return
    console.print(f"Journey {moved.id} is {moved.state}.", markup=False)


@app.command("start")
def start(org: Org, journey: JourneyId, as_json: AsJson = False) -> None:
    """draft → live: people start entering."""
    _move("start", org, journey, as_json)


@app.command("pause")
def pause(org: Org, journey: JourneyId, as_json: AsJson = False) -> None:
    """live → paused: nobody enters or moves on until resumed."""
    _move("pause", org, journey, as_json)


@app.command("resume")
def resume(org: Org, journey: JourneyId, as_json: AsJson = False) -> None:
    """paused → live."""
    _move("resume", org, journey, as_json)


@app.command("stop")
def stop(org: Org, journey: JourneyId, as_json: AsJson = False) -> None:
    """live or paused → stopped, for good: everyone inside exits."""
    _move("stop", org, journey, as_json)


def chart(report: JourneyReport, width: int = 30) -> Table:
    """One row per step: the inflow as a bar, then processing / processed / exit (reasons)."""
    top = max((s.inflow for s in report.steps), default=0)
    table = Table("step", "type", "inflow", "", "processing", "processed", "exit",
                  "exit reasons", title=f"Journey {report.journey_id} (version "
                  f"{report.version}, {report.state}): {report.people} entered, "
                  f"{report.inside} inside")
    for s in report.steps:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(s.exit_reasons.items()))
        table.add_row(s.id, s.type, str(s.inflow), bar(s.inflow, top, width),
                      str(s.processing), str(s.processed), str(s.exit), escape(reasons))
    return table


def _ab_line(step_id: str, ab: dict[str, Any]) -> str:
    """``A/B nudge (opened): a 10.0 % of 100, b 30.0 % of 100; winner b``."""
    arms = [f"{v} {100 * ab[v]['rate']:.1f} % of {ab[v]['sent_people']:,}" for v in ("a", "b")]
    decided = (f"winner {ab['winner']}" if ab["winner"] else
               f"running (confidence {100 * ab['confidence']:.1f} %)")
    return f"A/B {step_id} ({ab['metric']}): {', '.join(arms)}; {decided}"


@app.command("report")
def report(org: Org, journey: JourneyId, as_json: AsJson = False,
           csv: Annotated[bool, typer.Option("--csv", help="Print CSV on stdout.")] = False
           ) -> None:
    """Per step: inflow, processing, processed, exit (by reason), as a terminal chart."""

    async def _do(c: Container) -> JourneyReport:
        return await c.journeys.report(org, journey)

    found = run(_do)
    if as_json:
        emit_json(found.as_dict())
        return
    if csv:
        sys.stdout.write(found.csv())
        return
    console.print(chart(found))
    for s in found.steps:
        if s.ab is not None:
            console.print(_ab_line(s.id, s.ab), markup=False)
    if found.held:
        console.print(f"held until their quiet time ends: {found.held} ("
                      + ", ".join(f"{s.id} {s.held}" for s in found.steps if s.held) + ")",
                      markup=False)
    goal = found.as_dict()["goal"]
    if goal is not None:
        console.print(f"goal: {goal['met']} of {found.people} ({goal['share']} %), target "
                      f"{goal['target_share']} %: {'reached' if goal['reached'] else 'not yet'}",
                      markup=False)
