"""`clarion contacts …`: import, list, show and add people (contacts, leads, profiles)."""

from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clarion.cli.session import console, emit_json, fail, run
from clarion.errors import InvalidInput

if TYPE_CHECKING:
    from clarion.bootstrap import Container
    from clarion.domain.people import PersonPage, PersonRead
    from clarion.services.importing import ImportSummary

app = typer.Typer(help="People push can reach: contacts, leads and profiles.",
                  no_args_is_help=True)

Org = Annotated[str, typer.Option("--org", help="Organization id.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
SHOWN_REJECTIONS = 20


def _person_json(person: PersonRead) -> dict[str, Any]:
    out = asdict(person)
    out["created_at"] = person.created_at.isoformat()
    out["updated_at"] = person.updated_at.isoformat()
    return out


@app.command("import")
def import_(
    org: Org,
    file: Annotated[Path, typer.Argument(help="A .csv (with a header line) or .jsonl file.")],
    as_json: AsJson = False,
    rejected_out: Annotated[Path | None, typer.Option(
        "--rejected-out", help="Write every rejected row (line, reason) to this CSV.")] = None,
) -> None:
    """Import people from a CSV or JSON-lines file.

    A `type` column picks contact, lead or profile (default contact). Known columns: id,
    email, phone, first_name, last_name, time_zone, locale, and CIJ's contactid, leadid,
    emailaddress1, mobilephone, firstname, lastname. Other columns become attributes.
    Bad rows are skipped and listed with their line and the reason; a phone number that
    libphonenumber does not know is imported in E.164 form and listed as a warning."""

    from clarion.services.importing import count_records, iter_rows

    async def _do(c: Container) -> ImportSummary:
        total = count_records(file)  # refuses a missing or non-UTF-8 file up front
        with Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, disable=as_json) as bar:
            task = bar.add_task("import", total=total)
            return await c.importer.import_people(
                org, iter_rows(file), on_progress=lambda n: bar.advance(task, n))

    summary = run(_do)
    if rejected_out is not None:
        with rejected_out.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "reason"])
            writer.writerows([r.line, r.reason] for r in summary.rejected)
    if as_json:
        emit_json({"imported": summary.imported, "by_kind": summary.by_kind,
                   "rejected": [asdict(r) for r in summary.rejected],
                   "warnings": [asdict(w) for w in summary.warnings]})
        return
    totals = Table("imported", "rejected", *sorted(summary.by_kind), title="Import")
    totals.add_row(str(summary.imported), str(len(summary.rejected)),
                   *(str(summary.by_kind[k]) for k in sorted(summary.by_kind)))
    console.print(totals)
    if summary.rejected:
        table = Table("line", "reason", title=f"Rejected rows (first {SHOWN_REJECTIONS})"
                      if len(summary.rejected) > SHOWN_REJECTIONS else "Rejected rows")
        for r in summary.rejected[:SHOWN_REJECTIONS]:
            table.add_row(str(r.line), r.reason)
        console.print(table)
        if rejected_out is None and len(summary.rejected) > SHOWN_REJECTIONS:
            console.print("Use --rejected-out FILE to get every rejected row.")
    if summary.warnings:
        shown = summary.warnings[:SHOWN_REJECTIONS]
        table = Table("line", "warning (imported as shown)",
                      title=f"Warnings (first {len(shown)} of {len(summary.warnings)})"
                      if len(summary.warnings) > len(shown) else "Warnings")
        for w in shown:
            table.add_row(str(w.line), w.message)
        console.print(table)


@app.command("list")
def list_(
    org: Org,
    email: Annotated[str | None, typer.Option(help="Only the person with this email.")] = None,
    phone: Annotated[str | None, typer.Option(help="Only the person with this number.")] = None,
    kind: Annotated[str | None, typer.Option("--type", help="contact, lead or profile.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many (1-1000).")] = 100,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of a previous page.")] = None,
    as_json: AsJson = False,
) -> None:
    """List people, or look one up by email or phone."""

    async def _do(c: Container) -> PersonPage:
        return await c.people.page(org, kind=kind, email=email, phone=phone, limit=limit,
                                   cursor=cursor)

    page = run(_do)
    if as_json:
        emit_json({"items": [_person_json(p) for p in page.items],
                   "next_cursor": page.next_cursor})
        return
    if not page.items:
        filters = [f"{name} {value}" for name, value in
                   (("type", kind), ("email", email), ("phone", phone)) if value]
        console.print(f"No people in organization {org}"
                      + (f" with {' and '.join(filters)}" if filters else "")
                      + (" after this cursor" if cursor else "")
                      + ("" if filters or cursor else
                         f": import some with `clarion contacts import --org {org} FILE`")
                      + ".", markup=False,
                      soft_wrap=True)
        return
    table = Table("id", "type", "email", "phone", "name")
    for p in page.items:
        name = " ".join(x for x in (p.first_name, p.last_name) if x)
        table.add_row(p.id, p.kind, p.email or "", p.phone or "", name)
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}")


@app.command("show")
def show(
    org: Org,
    person_id: Annotated[str, typer.Argument(help="The person's id.")],
    as_json: AsJson = False,
) -> None:
    """Show one person."""

    async def _do(c: Container) -> PersonRead:
        return await c.people.get(org, person_id)

    _print(run(_do), as_json)


@app.command("add")
def add(
    org: Org,
    email: Annotated[str | None, typer.Option(help="Email address.")] = None,
    phone: Annotated[str | None, typer.Option(help="Phone, e.g. +33612345678.")] = None,
    first_name: Annotated[str | None, typer.Option(help="First name.")] = None,
    last_name: Annotated[str | None, typer.Option(help="Last name.")] = None,
    kind: Annotated[str, typer.Option("--type", help="contact, lead or profile.")] = "contact",
    time_zone: Annotated[str | None, typer.Option(help="IANA name, e.g. Europe/Paris.")] = None,
    locale: Annotated[str | None, typer.Option(help="BCP 47 tag, e.g. fr-FR.")] = None,
    person_id: Annotated[str | None, typer.Option("--id", help="A GUID (CIJ's id).")] = None,
    attr: Annotated[list[str] | None, typer.Option(help="KEY=VALUE attribute (repeat).")] = None,
    as_json: AsJson = False,
) -> None:
    """Add one person."""
    attributes: dict[str, Any] = {}
    for item in attr or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(InvalidInput(f"--attr {item!r} is not KEY=VALUE",
                              fix="Write each attribute as --attr tier=gold (repeat it for "
                              "several)."), code=2)
        attributes[key] = value
    data: dict[str, Any] = {"kind": kind, "attributes": attributes}
    optional = {"id": person_id, "email": email, "phone": phone, "first_name": first_name,
                "last_name": last_name, "time_zone": time_zone, "locale": locale}
    data.update({key: value for key, value in optional.items() if value is not None})

    async def _do(c: Container) -> PersonRead:
        return await c.people.create(org, data)

    _print(run(_do), as_json)


def _print(person: PersonRead, as_json: bool) -> None:
    if as_json:
        emit_json(_person_json(person))
        return
    table = Table("field", "value", show_header=False)
    for key, value in _person_json(person).items():
        table.add_row(key, "" if value is None else str(value))
    console.print(table)
