"""`clarion orgs …`: organizations and admin tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from clarion.cli.session import console, emit_json, run

if TYPE_CHECKING:
    from clarion.bootstrap import Container
    from clarion.domain.orgs import AdminToken, AdminTokenCreated, Org, OrgCreated

app = typer.Typer(help="Organizations and their admin tokens.", no_args_is_help=True)


@app.command("create")
def create(
    name: Annotated[str, typer.Option(help="The organization's display name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create an organization and print its id and first admin token (shown once)."""

    async def _do(c: Container) -> OrgCreated:
        return await c.orgs.create(name)

    created = run(_do)
    if as_json:
        emit_json({"id": created.id, "name": created.name, "admin_token": created.admin_token})
    else:
        console.print(f"Organization [bold]{created.name}[/bold] created.")
        console.print(f"  id:          {created.id}")
        console.print(f"  admin token: {created.admin_token}  (shown once: keep it safe)")


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List organizations."""

    async def _do(c: Container) -> list[Org]:
        return await c.orgs.all()

    rows = run(_do)
    if as_json:
        emit_json([{"id": o.id, "name": o.name} for o in rows])
        return
    if not rows:
        console.print("No organizations yet: create one with "
                      "`clarion orgs create --name \"Contoso\"`.", markup=False,
                      soft_wrap=True)
        return
    table = Table("id", "name")
    for o in rows:
        table.add_row(o.id, o.name)
    console.print(table)


@app.command("token")
def token(
    org: Annotated[str, typer.Option(help="Organization id.")],
    name: Annotated[str, typer.Option(help="Who or what uses it (shown when listing).")]
    = "admin",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Issue another admin token for an organization (shown once)."""

    async def _do(c: Container) -> AdminTokenCreated:
        return await c.orgs.new_admin_token(org, name)

    made = run(_do)
    if as_json:
        emit_json({"org_id": org, "id": made.id, "name": made.name, "admin_token": made.token})
    else:
        console.print(f"admin token {made.id} ({made.name}): {made.token}  (shown once)")


@app.command("tokens")
def tokens(
    org: Annotated[str, typer.Option(help="Organization id.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List an organization's admin tokens (never their values)."""

    async def _do(c: Container) -> list[AdminToken]:
        return await c.orgs.admin_tokens(org)

    rows = run(_do)
    if as_json:
        emit_json([_token_json(x) for x in rows])
        return
    if not rows:
        console.print(f"No admin tokens in organization {org}: issue one with "
                      f"`clarion orgs token --org {org}`.", markup=False,
                      soft_wrap=True)
        return
    table = Table("id", "name", "created", "revoked")
    for x in rows:
        table.add_row(x.id, x.name, x.created_at.isoformat(timespec="seconds"),
                      x.revoked_at.isoformat(timespec="seconds") if x.revoked_at else "")
    console.print(table)


@app.command("revoke-token")
def revoke_token(
    org: Annotated[str, typer.Option(help="Organization id.")],
    token_id: Annotated[str, typer.Option("--id", help="The token's id (`clarion orgs tokens`).")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Revoke an admin token at once (even the last one: make a new one with `orgs token`)."""

    async def _do(c: Container) -> AdminToken:
        return await c.orgs.revoke_admin_token(org, token_id, keep_one=False)

    done = run(_do)
    if as_json:
        emit_json(_token_json(done))
    else:
        console.print(f"admin token {done.id} ({done.name}) revoked.")


def _token_json(x: AdminToken) -> dict[str, str | None]:
    return {"id": x.id, "name": x.name, "created_at": x.created_at.isoformat(),
            "revoked_at": x.revoked_at.isoformat() if x.revoked_at else None}
