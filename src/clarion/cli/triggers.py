"""`clarion triggers …`: declare, list and fire custom triggers."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from clarion.cli.session import console, emit_json, fail, run
from clarion.errors import InvalidInput

if TYPE_CHECKING:
    from clarion.bootstrap import Container
    from clarion.domain.triggers import TriggerRead
    from clarion.services.triggers import Fired

app = typer.Typer(help="Custom triggers: declared with typed attributes, fired for a person.",
                  no_args_is_help=True)

Org = Annotated[str, typer.Option("--org", help="Organization id.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _json(trigger: TriggerRead) -> dict[str, Any]:
    out = asdict(trigger)
    out["created_at"] = trigger.created_at.isoformat()
    return out


def _pairs(items: list[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(InvalidInput(f"{option} {item!r} is not key=value",
                              fix=f"Write e.g. {option} cart_total=number."))
        out[key.strip()] = value.strip()
    return out


@app.command("create")
def create(
    org: Org,
    name: Annotated[str, typer.Argument(help="e.g. cart_abandoned.")],
    attribute: Annotated[list[str] | None, typer.Option(
        "--attribute", help="name=type (string, number, boolean, datetime); repeat it.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Declare a trigger and its typed attributes."""
    data = {"name": name, "attributes": _pairs(attribute or [], "--attribute")}

    async def _do(c: Container) -> TriggerRead:
        return await c.triggers.create(org, data)

    trigger = run(_do)
    if as_json:
        emit_json(_json(trigger))
        return
    console.print(f"trigger {trigger.name} declared ({trigger.id})", soft_wrap=True)


@app.command("list")
def list_(org: Org, as_json: AsJson = False) -> None:
    """List the org's triggers."""

    async def _do(c: Container) -> list[TriggerRead]:
        out: list[TriggerRead] = []
        after: str | None = None
        while page := await c.triggers.all(org, after=after, limit=1000):
            out.extend(page)
            after = page[-1].name
        return out

    triggers = run(_do)
    if as_json:
        emit_json([_json(t) for t in triggers])
        return
    if not triggers:
        console.print(f"No triggers in organization {org}: declare one with `clarion triggers "
                      f"create --org {org} cart_abandoned --attribute cart_total=number`.",
                      markup=False, soft_wrap=True)
        return
    table = Table("name", "attributes", "id")
    for t in triggers:
        table.add_row(t.name, ", ".join(f"{k}: {v}" for k, v in t.attributes.items()), t.id)
    console.print(table)


@app.command("fire")
def fire(
    org: Org,
    name: Annotated[str, typer.Argument(help="The trigger's name.")],
    user: Annotated[str, typer.Option("--user", help="The person's id.")],
    data: Annotated[str, typer.Option(
        "--data", help='The attributes as a JSON object, e.g. \'{"cart_total": 72.5}\'.')
    ] = "{}",
    idempotency_key: Annotated[str | None, typer.Option(
        "--idempotency-key", help="A repeat with the same key fires nothing new.")] = None,
    as_json: AsJson = False,
) -> None:
    """Fire a trigger for a person (published to journeys as trigger.<name>)."""
    try:
        values = json.loads(data)
    except ValueError as exc:
        fail(InvalidInput(f"--data is not JSON: {exc}", field="data",
                          fix='Quote it for the shell: --data \'{"cart_total": 72.5}\'.'))
    if not isinstance(values, dict):
        fail(InvalidInput("--data must be a JSON object", field="data",
                          fix='Write e.g. --data \'{"cart_total": 72.5}\'.'))

    async def _do(c: Container) -> Fired:
        return await c.triggers.fire(org, name, user, values, idempotency_key)

    fired = run(_do)
    event = fired.event
    if as_json:
        emit_json({"id": event.id, "trigger": event.trigger, "user_id": event.person_id,
                   "data": event.data, "fired_at": event.fired_at.isoformat(),
                   "created": fired.created})
        return
    what = "fired" if fired.created else "already fired with this key"
    console.print(f"{event.trigger} {what} for {event.person_id} ({event.id})", soft_wrap=True)
