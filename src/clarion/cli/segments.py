"""`clarion segments …`: create, list, show, size and import static members."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from clarion.cli.session import console, emit_json, run

if TYPE_CHECKING:
    from clarion.bootstrap import Container
    from clarion.domain.segments import ImportResult, SegmentRead, SegmentSize

app = typer.Typer(help="Segments: people chosen by a filter, or an imported list.",
                  no_args_is_help=True)

Org = Annotated[str, typer.Option("--org", help="Organization id.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
SegmentId = Annotated[str, typer.Argument(help="The segment's id.")]


def _json(segment: SegmentRead) -> dict[str, Any]:
    out = asdict(segment)
    out["created_at"] = segment.created_at.isoformat()
    out["updated_at"] = segment.updated_at.isoformat()
    return out


def _print(segment: SegmentRead, as_json: bool) -> None:
    if as_json:
        emit_json(_json(segment))
        return
    table = Table("id", "name", "kind", "filter")
    table.add_row(segment.id, segment.name, segment.kind, segment.filter or "")
    console.print(table)


@app.command("create")
def create(
    org: Org,
    name: Annotated[str, typer.Argument(help="The segment's name.")],
    filter_: Annotated[str | None, typer.Option(
        "--filter", help="e.g. \"tier eq 'gold' or tier eq 'silver'\" (docs/segments.md).")
    ] = None,
    static: Annotated[bool, typer.Option(
        "--static", help="A static segment: import its members with `segments import`.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Create a dynamic segment (--filter) or a static one (--static)."""
    data: dict[str, Any] = {"name": name, "kind": "static" if static else "dynamic"}
    if filter_ is not None:
        data["filter"] = filter_

    async def _do(c: Container) -> SegmentRead:
        return await c.segments.create(org, data)

    _print(run(_do), as_json)


@app.command("list")
def list_(org: Org, as_json: AsJson = False) -> None:
    """List the org's segments."""

    async def _do(c: Container) -> list[SegmentRead]:
        out: list[SegmentRead] = []
        after: str | None = None
        while page := await c.segments.all(org, after=after, limit=1000):
            out.extend(page)
            after = page[-1].id
        return out

    segments = run(_do)
    if as_json:
        emit_json([_json(s) for s in segments])
        return
    if not segments:
        console.print(f"No segments in organization {org}: create one with `clarion segments "
                      f"create --org {org} NAME --filter \"tier eq 'gold'\"`.", markup=False,
                      soft_wrap=True)
        return
    table = Table("id", "name", "kind", "filter")
    for s in segments:
        table.add_row(s.id, s.name, s.kind, s.filter or "")
    console.print(table)


@app.command("show")
def show(org: Org, segment_id: SegmentId, as_json: AsJson = False) -> None:
    """Show one segment."""

    async def _do(c: Container) -> SegmentRead:
        return await c.segments.get(org, segment_id)

    _print(run(_do), as_json)


@app.command("size")
def size(org: Org, segment_id: SegmentId, as_json: AsJson = False) -> None:
    """How many people the segment holds now, with a sample."""

    async def _do(c: Container) -> SegmentSize:
        return await c.segments.size(org, segment_id)

    result = run(_do)
    if as_json:
        emit_json(asdict(result))
        return
    console.print(f"{result.count} people", soft_wrap=True)
    for person in result.sample:
        console.print(f"  {person}", soft_wrap=True)


@app.command("import")
def import_(
    org: Org, segment_id: SegmentId,
    file: Annotated[Path, typer.Argument(
        help="A .csv (header line; an id/user_id/contactid or email column) or .jsonl file.")],
    as_json: AsJson = False,
) -> None:
    """Add the people of a file to a static segment."""
    from clarion.services.importing import count_records, iter_rows

    async def _do(c: Container) -> ImportResult:
        count_records(file)  # refuses a missing or non-UTF-8 file up front
        return await c.segments.import_members(org, segment_id,
                                               (row for _, row in iter_rows(file)))

    result = run(_do)
    if as_json:
        emit_json(asdict(result))
        return
    console.print(f"added {result.added}, already members {result.already}, "
                  f"unknown {result.unknown_count}", soft_wrap=True)
    for given in result.unknown[:20]:
        console.print(f"  unknown: {given}", markup=False, soft_wrap=True)
