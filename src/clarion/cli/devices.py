"""`clarion devices …`: what Clarion holds for a person, and registration outcomes."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from clarion.bootstrap import Container
from clarion.cli.runtime import console, emit_json, run
from clarion.services import devices

app = typer.Typer(help="Devices and registration requests.", no_args_is_help=True)


@app.command("list")
def list_(
    org: Annotated[str, typer.Option(help="Organization id.")],
    app_id: Annotated[str | None, typer.Option("--app", help="Only this app.")] = None,
    user: Annotated[str | None,
                    typer.Option(help="Only this person (contact/lead/profile).")] = None,
    state: Annotated[str | None, typer.Option(help="active, invalid or mismatch.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List devices with their state and the reason for it."""

    async def _do(c: Container) -> list[devices.DeviceRead]:
        return await devices.list_devices(db=c.db, org_id=org, app_id=app_id, person_id=user,
                                          state=state, limit=limit)

    rows = run(_do)
    if as_json:
        emit_json([asdict(r) for r in rows])
        return
    table = Table("device", "person", "platform", "state", "reason", "registered")
    for r in rows:
        table.add_row(r.id[:8], r.person_id, r.platform, r.state, r.state_reason or "",
                      r.last_registered_at.isoformat(timespec="seconds"))
    console.print(table)


@app.command("registration")
def registration(
    org: Annotated[str, typer.Option(help="Organization id.")],
    request_id: Annotated[str, typer.Argument(help="A RegistrationRequestId.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show a tracked registration request and why it ended as it did."""

    async def _do(c: Container) -> devices.RegistrationRead:
        return await devices.get_registration(db=c.db, org_id=org, request_id=request_id)

    r = run(_do)
    if as_json:
        emit_json(asdict(r))
        return
    console.print(f"{r.id}: [bold]{r.status}[/bold] {r.failure_reason or ''}")
    if r.detail:
        console.print(f"  {r.detail}")
