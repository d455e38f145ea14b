"""`clarion consent …`: people's opt-in or opt-out of an app's commercial push."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clarion.cli.session import console, emit_json, run

if TYPE_CHECKING:
    from clarion.bootstrap import Container
    from clarion.services.compliance import ConsentImport, ConsentRead

app = typer.Typer(help="Consent: people's opt-in or opt-out of an app's commercial push "
                  "(docs/compliance.md).", no_args_is_help=True)

Org = Annotated[str, typer.Option(help="Organization id.")]
AppId = Annotated[str, typer.Option("--app", help="App id.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
SHOWN = 20


@app.command("set")
def set_(
    org: Org, app_id: AppId,
    user: Annotated[str, typer.Option(help="The person's id.")],
    opted_in: Annotated[bool, typer.Option("--opted-in/--opted-out",
                                           help="The person's choice.")],
    source: Annotated[str, typer.Option(help="Where the choice was made.")] = "cli",
    as_json: AsJson = False,
) -> None:
    """Record one person's choice."""

    async def _do(c: Container) -> ConsentRead:
        return await c.compliance.set_consent(org, app_id, user, opted_in=opted_in,
                                              source=source)

    got = run(_do)
    if as_json:
        emit_json({"app_id": got.app_id, "user_id": got.user_id, "opted_in": got.opted_in,
                   "source": got.source, "at": got.at})
        return
    console.print(f"{got.user_id}: {'opted in' if got.opted_in else 'opted out'} "
                  f"({got.source})", markup=False)


@app.command("import")
def import_(
    org: Org, app_id: AppId,
    file: Annotated[Path, typer.Argument(help="A .csv (with a header line) or .jsonl file.")],
    source: Annotated[str, typer.Option(help="The source of rows that name none.")] = "import",
    as_json: AsJson = False,
) -> None:
    """Import choices: columns user_id or email, opted_in (true/false, yes/no, 1/0) and
    optionally source. Bad rows are skipped and listed with their line and the reason."""
    from clarion.services.importing import count_records, iter_rows

    async def _do(c: Container) -> ConsentImport:
        total = count_records(file)  # refuses a missing or non-UTF-8 file up front
        with Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, disable=as_json) as bar:
            task = bar.add_task("import", total=total)
            return await c.compliance.import_consents(
                org, app_id, iter_rows(file), source=source,
                progress=lambda n: bar.advance(task, n))

    summary = run(_do)
    if as_json:
        emit_json({"imported": summary.imported,
                   "rejected": [{"line": line, "reason": why}
                                for line, why in summary.rejected]})
        return
    console.print(f"imported {summary.imported}, rejected {len(summary.rejected)}",
                  markup=False)
    if summary.rejected:
        table = Table("line", "reason", title="Rejected rows")
        for line, why in summary.rejected[:SHOWN]:
            table.add_row(str(line), why)
        console.print(table)
