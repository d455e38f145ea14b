"""`clarion devices …`: what Clarion holds for a person, and registration outcomes."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from clarion.cli.session import console, emit_json, run

if TYPE_CHECKING:
    from clarion.bootstrap import Container
    from clarion.domain.devices import DeviceRead, RegistrationRead

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

    async def _do(c: Container) -> list[DeviceRead]:
        return await c.devices.page(org, app_id=app_id, person_id=user, state=state,
                                    limit=limit)

    rows = run(_do)
    if as_json:
        emit_json([asdict(r) for r in rows])
        return
    if not rows:
        scope = [f"{name} {value}" for name, value in
                 (("person", user), ("app", app_id)) if value]
        console.print(f"No{'' if state is None else ' ' + state} devices for "
                      f"{' of '.join(scope) if scope else 'organization ' + org}: devices "
                      "appear when an app backend registers them "
                      "(`clarion apps developer-info` shows how).", markup=False,
                      soft_wrap=True)
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

    async def _do(c: Container) -> RegistrationRead:
        return await c.devices.registration(org, request_id)

    r = run(_do)
    if as_json:
        emit_json(asdict(r))
        return
    console.print(f"{r.id}: [bold]{r.status}[/bold] {r.failure_reason or ''}")
    if r.detail:
        console.print(f"  {r.detail}")
