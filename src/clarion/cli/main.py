"""The `clarion` command.

Commands import what they need when they run (``clarion.cli.session``): ``clarion --help`` and
``clarion version`` load neither the web framework nor the database layer.
"""

from __future__ import annotations

from typing import Annotated

import typer

from clarion import __version__
from clarion.cli import (
    apps,
    consent,
    contacts,
    demo,
    devices,
    emulator,
    jobs,
    journeys,
    orgs,
    reports,
    segments,
    send,
    triggers,
)
from clarion.cli import messages as messages_cli
from clarion.cli.check import check_config

app = typer.Typer(
    name="clarion",
    help="Clarion: self-hostable push notifications with a CIJ-compatible registration API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(orgs.app, name="orgs")
app.add_typer(apps.app, name="apps")
app.add_typer(contacts.app, name="contacts")
app.add_typer(devices.app, name="devices")
app.add_typer(jobs.app, name="jobs")
app.add_typer(emulator.app, name="emulator")
app.add_typer(reports.app, name="reports")
app.add_typer(messages_cli.app, name="messages")
app.add_typer(consent.app, name="consent")
app.add_typer(segments.app, name="segments")
app.add_typer(triggers.app, name="triggers")
app.add_typer(journeys.app, name="journeys")
app.command("check-config")(check_config)
app.command("send")(send.send)
app.command("demo")(demo.demo)


def _run_service(*, api: bool, worker: bool, host: str | None, port: int | None) -> None:
    """Run ``clarion.runtime.serve`` on uvloop (installed with uvicorn[standard]: ~2x faster
    I/O) until interrupted."""
    import asyncio

    import uvloop

    from clarion.cli.logging_policy import configure_logging
    from clarion.cli.session import console, fail, settings
    from clarion.errors import ClarionError
    from clarion.runtime import Roles, serve

    cfg = settings()
    configure_logging(cfg.log_level)
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(cfg, Roles(api=api, worker=worker), host=host or cfg.host,
                             port=port or cfg.port,
                             # URLs are never broken over lines (soft_wrap: the terminal wraps)
                             announce=lambda line: console.print(line, soft_wrap=True)))
    except ClarionError as exc:
        fail(exc)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (CLARION_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (CLARION_PORT).")] = None,
    worker: Annotated[bool, typer.Option("--worker/--no-worker",
                                         help="Run a worker in the same process.")] = True,
) -> None:
    """Run the API (and, by default, a worker) in one process."""
    _run_service(api=True, worker=worker, host=host, port=port)


@app.command("worker")
def worker_cmd() -> None:
    """Run a worker only (scale out: run as many as you like against PostgreSQL)."""
    _run_service(api=False, worker=True, host=None, port=None)


@app.command()
def migrate() -> None:
    """Apply database migrations (serve does this at start unless CLARION_AUTO_MIGRATE=0)."""
    import asyncio

    from clarion.cli.logging_policy import configure_logging
    from clarion.cli.session import console, fail, settings
    from clarion.errors import ClarionError
    from clarion.store.db import Database
    from clarion.store.migrate import redacted
    from clarion.store.preflight import prepare_database

    cfg = settings()
    configure_logging(cfg.log_level)

    async def _migrate() -> None:
        db = Database(cfg.resolved_database_url, write_timeout=cfg.db_write_timeout_seconds)
        try:
            await prepare_database(db, migrate=True)
        finally:
            await db.dispose()

    try:
        asyncio.run(_migrate())
    except ClarionError as exc:
        fail(exc)
    console.print(f"database at {redacted(cfg.resolved_database_url)} is up to date")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    app()
