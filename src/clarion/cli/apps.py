"""`clarion apps …`: app configurations, their API tokens and developer information.

Thin: read the options (and the configuration file), call one service, print. ``--json``
prints machine-readable output on stdout; the human form goes to the console (stderr).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from clarion.cli.app_config import make_config
from clarion.cli.session import console, emit_json, run
from clarion.errors import InvalidInput

if TYPE_CHECKING:
    from clarion.bootstrap import Container
    from clarion.domain.apps import (
        ApiTokenCreated,
        ApiTokenRead,
        AppCreated,
        AppRead,
        DeveloperInfo,
    )

app = typer.Typer(
    help="App configurations (CIJ's mobile app configuration): credentials, API tokens and "
    "developer information.",
    no_args_is_help=True,
)
tokens = typer.Typer(help="API tokens of an app (created, listed, revoked).",
                     no_args_is_help=True)
app.add_typer(tokens, name="tokens")
app.command("make-config")(make_config)

Org = Annotated[str, typer.Option("--org", help="Organization id.")]
AppId = Annotated[str, typer.Option("--app", help="App id (CIJ's MobileAppId).")]
Config = Annotated[str, typer.Option(
    "--config", help="JSON configuration document (a file path, or - for stdin).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def _read_config(source: str) -> Any:
    """The JSON document in ``source`` (a path, or ``-`` for stdin)."""
    fix = ("Give --config a JSON file such as {\"name\": \"Contoso\", \"web\": "
           "{\"vapid_subject\": \"mailto:ops@contoso.com\"}} (`clarion apps create --help` "
           "shows every field).")
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {source}: {exc.strerror or exc}", fix=fix,
                           field="--config") from exc
    from clarion.domain import text as json_text

    # The API's reader: a syntax error says line and column, unstorable text is refused.
    try:
        return json_text.loads(text, what="stdin" if source == "-" else source, fix=fix)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, fix=exc.fix, field="--config") from exc


def _show_app(a: AppRead) -> None:
    table = Table(title=f"{a.name}  ({a.id})", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for platform, public in a.platforms.items():
        status = a.credential_status.get(platform)
        state = "unchecked" if status is None else status.state.value
        if status is not None and status.reason:
            state += f": {status.reason}"
        details = ", ".join(f"{k}={v}" for k, v in public.items())
        table.add_row(platform.value, Text(f"{details}\ncredentials: {state}"))
    table.add_row("settings", ", ".join(f"{k}={v}" for k, v in a.settings.as_dict().items()))
    table.add_row("api tokens", str(a.api_token_count))
    console.print(table)


_CREATE_HELP = (
    "Create an app from a configuration file; prints its id and first API token (shown once)."
    "\n\nThe file is JSON with \"name\" and at least one of \"ios\", \"android\", \"web\"."
    "\n\nios, token auth: \"signing_key\" (the .p8 content, line breaks optional), \"key_id\", "
    "\"team_id\", \"bundle_id\", \"environment\" (sandbox or production). Certificate auth: "
    "\"auth\": \"certificate\", \"certificate_p12\" (base64), \"certificate_password\", "
    "\"bundle_id\", \"environment\"."
    "\n\nandroid: \"service_account\" (the key JSON from Firebase console → Project settings → "
    "Service accounts; not google-services.json), optional \"notification_block\"."
    "\n\nweb: \"vapid_subject\" (mailto: or https:), optional \"vapid_private_key\" "
    "(a key pair is generated when absent)."
    "\n\nsettings (optional): \"dry_run_on_register\" (default true), \"token_owner_policy\" "
    "(move or allow), \"max_devices_per_person\" (default 10, 1 to 1000)."
)


@app.command("create", help=_CREATE_HELP)
def create(org: Org, config: Config, as_json: AsJson = False) -> None:
    """Create an app from a configuration file (see the help for the fields)."""

    async def _do(c: Container) -> AppCreated:
        document = _read_config(config)
        return await c.apps.create(org, document)

    created = run(_do)
    if as_json:
        emit_json({"id": created.app.id, "api_token": created.api_token,
                   "app": created.app.as_dict()})
        return
    _show_app(created.app)
    console.print(f"App created: id {created.app.id}")
    console.print(f"API token: {created.api_token}  (shown once: keep it safe)", markup=False)
    console.print(f"Next: clarion apps developer-info --org {org} --app {created.app.id}",
                  markup=False)


@app.command("list")
def list_(org: Org, as_json: AsJson = False) -> None:
    """List the org's apps."""

    async def _do(c: Container) -> list[AppRead]:
        return await c.apps.of_org(org)

    rows = run(_do)
    if as_json:
        emit_json([a.as_dict() for a in rows])
        return
    if not rows:
        console.print(f"No apps in organization {org}: create one with `clarion apps create "
                      f"--org {org} --config app.json`.", markup=False,
                      soft_wrap=True)
        return
    table = Table("id", "name", "platforms", "credentials", "api tokens")
    for a in rows:
        states = ", ".join(f"{p.value}: {s.state.value}" for p, s in a.credential_status.items())
        table.add_row(a.id, a.name, ", ".join(p.value for p in a.platforms), states,
                      str(a.api_token_count))
    console.print(table)


@app.command("show")
def show(org: Org, app_id: AppId, as_json: AsJson = False) -> None:
    """Show an app: public configuration, settings, credential status (never secrets)."""

    async def _do(c: Container) -> AppRead:
        return await c.apps.get(org, app_id)

    a = run(_do)
    if as_json:
        emit_json(a.as_dict())
    else:
        _show_app(a)


@app.command("update")
def update(org: Org, app_id: AppId, config: Config, as_json: AsJson = False) -> None:
    """Update an app: platforms in the file are merged over the stored ones (secrets left out
    are kept), "ios": null removes iOS, settings are merged."""

    async def _do(c: Container) -> AppRead:
        document = _read_config(config)
        return await c.apps.update(org, app_id, document)

    a = run(_do)
    if as_json:
        emit_json(a.as_dict())
    else:
        _show_app(a)
        console.print("App updated.")


@app.command("delete")
def delete(
    org: Org, app_id: AppId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an app with its API tokens and registered devices."""
    if not yes:
        typer.confirm(f"Delete app {app_id} with its API tokens and devices?", abort=True)

    async def _do(c: Container) -> None:
        await c.apps.delete(org, app_id)

    run(_do)
    console.print(f"App {app_id} deleted.")


@tokens.command("create")
def token_create(
    org: Org, app_id: AppId,
    name: Annotated[str, typer.Option(help="What uses the token, e.g. backend-prod.")] = "default",
    as_json: AsJson = False,
) -> None:
    """Create an API token (shown once)."""

    async def _do(c: Container) -> ApiTokenCreated:
        return await c.apps.create_token(org, app_id, name)

    created = run(_do)
    if as_json:
        emit_json({**created.token.as_dict(), "token": created.value})
    else:
        console.print(f"API token {created.token.id} ({created.token.name}): {created.value}  "
                      "(shown once: keep it safe)", markup=False)


@tokens.command("list")
def token_list(org: Org, app_id: AppId, as_json: AsJson = False) -> None:
    """List an app's API tokens (prefixes only; revoked ones show when)."""

    async def _do(c: Container) -> list[ApiTokenRead]:
        return await c.apps.tokens_of(org, app_id)

    rows = run(_do)
    if as_json:
        emit_json([tok.as_dict() for tok in rows])
        return
    if not rows:
        console.print(f"No API tokens for app {app_id}: create one with `clarion apps tokens "
                      f"create --org {org} --app {app_id}`.", markup=False,
                      soft_wrap=True)
        return
    table = Table("id", "name", "prefix", "created", "revoked")
    for tok in rows:
        d = tok.as_dict()
        table.add_row(d["id"], d["name"], d["prefix"] + "…", d["created_at"],
                      d["revoked_at"] or "")
    console.print(table)


@tokens.command("revoke")
def token_revoke(
    org: Org, app_id: AppId,
    token_id: Annotated[str, typer.Option("--token", help="Token id (from tokens list).")],
) -> None:
    """Revoke an API token (running servers refuse it within CLARION_API_TOKEN_CACHE_SECONDS)."""

    async def _do(c: Container) -> None:
        await c.apps.revoke_token(org, app_id, token_id)

    run(_do)
    console.print(f"API token {token_id} revoked.")


def _curl(info: DeveloperInfo) -> str:
    body = json.dumps(info.example_registration, ensure_ascii=False)
    return (f"curl -X POST {shlex.quote(info.endpoints.register_device)} \\\n"
            "  -H 'Content-Type: application/json' \\\n"
            "  -H 'x-ms-track-registration: true' \\\n"
            f"  -d {shlex.quote(body)}")


@app.command("developer-info")
def developer_info(org: Org, app_id: AppId, as_json: AsJson = False) -> None:
    """What a token backend needs: public URL, org id, app id, the endpoints, a curl sample."""

    async def _do(c: Container) -> DeveloperInfo:
        return await c.apps.developer_info(org, app_id)

    info = run(_do)
    if as_json:
        emit_json({**info.as_dict(), "curl_example": _curl(info)})
        return
    e = info.endpoints
    lines = [
        f"Public endpoint   {info.public_url}",
        f"Organization ID   {info.org_id}",
        f"Mobile app ID     {info.app_id}   ({info.app_name})",
        f"API tokens        {info.api_token_count} active "
        f"(new one: clarion apps tokens create --org {org} --app {app_id})",
        "",
        "Device registration (POST, JSON body, no auth header):",
        f"  devices                {e.register_device}",
        f"  devices/batch          {e.register_devices_batch}",
        f"  devices/status/        {e.registration_status}",
        f"  devices/cleanup        {e.cleanup_device}",
        f"  devices/cleanup/batch  {e.cleanup_devices_batch}",
        "Interactions (POST):",
        f"  events                 {e.interaction_events}",
        "Contact / lead lookup (GET, OData; Authorization: Bearer <admin token>):",
        f"  contacts               {e.odata_contacts}?$filter=emailaddress1 eq 'a@b.com'",
        f"  leads                  {e.odata_leads}",
    ]
    if info.web_vapid_public_key:
        lines += ["", "Web Push applicationServerKey (VAPID public key):",
                  f"  {info.web_vapid_public_key}"]
    console.print(Panel(Text("\n".join(lines)), title="Developer information", expand=False))
    # Outside the panel and soft-wrapped, so a copy gives the command without hard breaks.
    console.print("Register a device (replace the <placeholders>):")
    console.print(_curl(info), soft_wrap=True, markup=False, highlight=False)
