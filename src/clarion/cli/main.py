"""The `clarion` command."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import typer
import uvicorn

from clarion import __version__
from clarion.api.app import create_app
from clarion.bootstrap import build
from clarion.cli import apps, contacts, devices, emulator, jobs, orgs, reports, send
from clarion.cli.check import check_config
from clarion.cli.gc_policy import tune_for_service
from clarion.cli.logging_policy import configure_logging
from clarion.cli.runtime import console, fail, settings
from clarion.errors import ClarionError
from clarion.store.db import Database
from clarion.store.preflight import prepare_database
from clarion.worker.handlers import PURGE_JOB, build_handlers
from clarion.worker.loop import Worker
from clarion.worker.scheduler import run_scheduler

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
app.command("check-config")(check_config)
app.command("send")(send.send)


def _run(coro: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when it is installed (it is, with uvicorn[standard]): ~2x faster I/O."""
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        factory = None
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(coro)
    except ClarionError as exc:
        fail(exc)


async def _serve(*, with_api: bool, with_worker: bool, host: str, port: int) -> None:
    cfg = settings()
    container = build(cfg)  # validates the configuration before anything touches the database
    try:
        # A database this process cannot write stops it here, with one sentence.
        await prepare_database(container.db, migrate=cfg.auto_migrate)
    except BaseException:
        await container.close()
        raise
    await container.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks: list[asyncio.Task[None]] = []
    server: uvicorn.Server | None = None
    if with_worker:
        worker = Worker(
            container.queue, build_handlers(container, with_api=with_api),
            concurrency=cfg.worker_concurrency, batch_size=cfg.worker_batch_size,
            poll_seconds=cfg.job_poll_seconds,
        )
        tasks.append(asyncio.create_task(worker.run(stop), name="clarion-worker"))
        tasks.append(asyncio.create_task(
            run_scheduler(container.queue, container.clock, stop, every={PURGE_JOB: 600.0}),
            name="clarion-scheduler"))
    if with_api:
        config = uvicorn.Config(
            create_app(container), host=host, port=port, log_level=cfg.log_level,
            access_log=False, lifespan="off", loop="none",
        )
        server = uvicorn.Server(config)
        tasks.append(asyncio.create_task(server.serve(), name="clarion-api"))
        console.print(f"Clarion {__version__} listening on http://{host}:{port} "
                      f"({container.db.dialect}); API docs at {cfg.public_url}/docs")
    tune_for_service(cfg.gc_threshold)  # everything start-up built lives until exit
    try:
        await stop.wait()
    finally:
        if server is not None:
            server.should_exit = True
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=30)
        await container.close()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (CLARION_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (CLARION_PORT).")] = None,
    worker: Annotated[bool, typer.Option("--worker/--no-worker",
                                         help="Run a worker in the same process.")] = True,
) -> None:
    """Run the API (and, by default, a worker) in one process."""
    cfg = settings()
    configure_logging(cfg.log_level)
    _run(_serve(with_api=True, with_worker=worker, host=host or cfg.host,
                port=port or cfg.port))


@app.command("worker")
def worker_cmd() -> None:
    """Run a worker only (scale out: run as many as you like against PostgreSQL)."""
    cfg = settings()
    configure_logging(cfg.log_level)
    _run(_serve(with_api=False, with_worker=True, host=cfg.host, port=cfg.port))


@app.command()
def migrate() -> None:
    """Apply database migrations (serve does this at start unless CLARION_AUTO_MIGRATE=0)."""
    cfg = settings()
    configure_logging(cfg.log_level)

    async def _migrate() -> None:
        db = Database(cfg.resolved_database_url, write_timeout=cfg.db_write_timeout_seconds)
        try:
            await prepare_database(db, migrate=True)
        finally:
            await db.dispose()

    _run(_migrate())
    console.print(f"database at {cfg.resolved_database_url.split('@')[-1]} is up to date")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    app()
