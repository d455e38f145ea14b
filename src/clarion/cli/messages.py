"""`clarion messages …`: push messages designed once, personalised per person (placeholders and
conditions), previewed per platform and test-sent to one person.

Thin: read the options (and the message file), call one service, print. ``--json`` prints
machine-readable output on stdout; the human form goes to the console (stderr).
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from clarion.cli.session import console, emit_json, run
from clarion.errors import InvalidInput

if TYPE_CHECKING:
    from clarion.bootstrap import Container
    from clarion.domain.push_messages import PushMessageRead
    from clarion.services.messages import Preview
    from clarion.services.sending import SendAccepted

app = typer.Typer(
    help="Push messages: designed once, personalised per person ({{Name}} placeholders and "
    "{{#if}} conditions), previewed and test-sent. docs/messages.md has the format.",
    no_args_is_help=True,
)

Org = Annotated[str, typer.Option("--org", help="Organization id.")]
MessageId = Annotated[str, typer.Option("--id", help="Message id.")]
User = Annotated[str, typer.Option("--user", help="Person id.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
TriggerData = Annotated[str | None, typer.Option(
    "--trigger-data", help="JSON object: values of placeholders whose source is trigger.")]

_FIX = ('Give --file a JSON message such as {"name": "Welcome", "app_id": "<app id>", '
        '"title": "Welcome, {{FirstName}}", "placeholders": {"FirstName": {"source": '
        '"audience", "field": "first_name", "default": "there"}}} (docs/messages.md).')


def _read(source: str, option: str, fix: str) -> Any:
    """The JSON document in ``source`` (a path, or ``-`` for stdin)."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {source}: {exc.strerror or exc}", fix=fix,
                           field=option) from exc
    from clarion.domain import text as json_text

    try:  # the API's reader: a syntax error says line and column
        return json_text.loads(text, what="stdin" if source == "-" else source, fix=fix)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, fix=exc.fix, field=option) from exc


def _trigger(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    from clarion.domain import text as json_text

    fix = 'Give a JSON object, e.g. --trigger-data \'{"cart_total": 52}\'.'
    value = json_text.loads(raw, what="--trigger-data", fix=fix)
    if not isinstance(value, dict):
        raise InvalidInput("--trigger-data must be a JSON object", field="--trigger-data",
                           fix=fix)
    return value


def _document(m: PushMessageRead) -> dict[str, Any]:
    return m.model_dump(mode="json")


@app.command("create")
def create(org: Org, file: Annotated[str, typer.Option(
        "--file", help="JSON message document (a file path, or - for stdin).")],
           as_json: AsJson = False) -> None:
    """Save a push message; a template error names the field, line and column."""

    async def _do(c: Container) -> PushMessageRead:
        from clarion.domain.push_messages import parse_push_message

        return await c.messages.create(org, parse_push_message(_read(file, "--file", _FIX)))

    created = run(_do)
    if as_json:
        emit_json(_document(created))
        return
    console.print(f"Message created: id {created.id}", markup=False)
    console.print(f"Next: clarion messages preview --org {org} --id {created.id} --user "
                  "<person id>", markup=False)


@app.command("list")
def list_(org: Org, as_json: AsJson = False) -> None:
    """List the org's push messages."""

    async def _do(c: Container) -> list[PushMessageRead]:
        return await c.messages.of_org(org)

    rows = run(_do)
    if as_json:
        emit_json([_document(m) for m in rows])
        return
    if not rows:
        console.print(f"No messages in organization {org}: create one with `clarion messages "
                      f"create --org {org} --file message.json`.", markup=False, soft_wrap=True)
        return
    table = Table("id", "name", "app", "category", "title", "placeholders")
    for m in rows:
        table.add_row(m.id, m.name, m.app_id, m.category, m.title,
                      ", ".join(m.placeholders))
    console.print(table)


@app.command("show")
def show(org: Org, message_id: MessageId, as_json: AsJson = False) -> None:
    """Show one push message (its whole document)."""

    async def _do(c: Container) -> PushMessageRead:
        return await c.messages.get(org, message_id)

    m = run(_do)
    if as_json:
        emit_json(_document(m))
        return
    table = Table(title=f"{m.name}  ({m.id})", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in _document(m).items():
        if key not in ("id", "name") and value not in (None, {}, ""):
            table.add_row(key, str(value))
    console.print(table)


@app.command("preview")
def preview(org: Org, message_id: MessageId, user: User, trigger_data: TriggerData = None,
            as_json: AsJson = False) -> None:
    """The message as the person would receive it, per platform, with its size against each
    provider's limit."""

    async def _do(c: Container) -> Preview:
        return await c.messages.preview(org, message_id, user, _trigger(trigger_data))

    p = run(_do)
    if as_json:
        emit_json({"message_id": p.message_id, "user_id": p.user_id,
                   "message": p.message.as_dict(),
                   "platforms": [asdict(x) for x in p.platforms]})
        return
    m = p.message
    console.print(f"[bold]{m.title}[/bold]" + (f" — {m.subtitle}" if m.subtitle else ""))
    console.print(m.body, markup=False)
    if m.link:
        console.print(f"on click: {m.link}", markup=False)
    table = Table("platform", "bytes", "limit", "fits", "note")
    for x in p.platforms:
        table.add_row(x.platform, str(x.bytes), str(x.limit),
                      "yes" if x.fits else "[red]no[/red]", x.note or "")
    console.print(table)


@app.command("test")
def send_test(org: Org, message_id: MessageId, user: User,
              trigger_data: TriggerData = None, as_json: AsJson = False) -> None:
    """Send the message now to the person's valid devices (a test send: empty trackingId)."""

    async def _do(c: Container) -> SendAccepted:
        return await c.messages.test(org, message_id, user, _trigger(trigger_data))

    accepted = run(_do)
    if as_json:
        emit_json(asdict(accepted.send))
        return
    console.print(f"Test send queued: {accepted.send.id}. Follow it with GET "
                  f"/v1/orgs/{org}/sends/{accepted.send.id}.", markup=False)
