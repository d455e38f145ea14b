"""Process assembly: what runs in a Clarion process, started and stopped as one.

``serve`` runs, on one event loop, the API (uvicorn, on the container's services), a worker
(every task of ``clarion.worker.tasks``) and the scheduler of periodic work (``SCHEDULE``), or
any subset of them: ``clarion serve`` (all three), ``clarion serve --no-worker`` (API only,
scale-out), ``clarion worker`` (worker and scheduler). It migrates the database first unless
``CLARION_AUTO_MIGRATE=0``, stops on SIGINT/SIGTERM after in-flight work finishes, and closes
everything it opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import uvicorn

from clarion import __version__
from clarion.api.app import create_app
from clarion.bootstrap import Container, build
from clarion.config import Settings
from clarion.errors import ConfigurationError
from clarion.gc_policy import tune_for_service
from clarion.store.preflight import prepare_database
from clarion.worker.loop import Worker
from clarion.worker.scheduler import run_scheduler
from clarion.worker.tasks import MAINTENANCE_PURGE, build_handlers

# Periodic work: task name -> period in seconds (each occurrence runs once, whatever the
# number of processes scheduling it).
SCHEDULE: dict[str, float] = {MAINTENANCE_PURGE.name: 600.0}


@dataclass(frozen=True, slots=True)
class Roles:
    api: bool = True
    worker: bool = True


def worker_for(container: Container, *, with_api: bool) -> Worker:
    cfg = container.settings
    return Worker(container.queue, build_handlers(container, with_api=with_api),
                  concurrency=cfg.worker_concurrency, batch_size=cfg.worker_batch_size,
                  poll_seconds=cfg.job_poll_seconds)


@dataclass(frozen=True, slots=True)
class Running:
    """A Clarion started in this process: its services and where its API answers."""

    container: Container
    url: str  # the public URL (CLARION_PUBLIC_URL, else the address served)


@contextlib.asynccontextmanager
async def running(settings: Settings, roles: Roles, *, host: str, port: int,
                  announce: Callable[[str], None] = print) -> AsyncIterator[Running]:
    """Clarion's roles running on this event loop for the ``async with`` block (the API
    answers when it is entered); leaving it stops them after in-flight work and closes
    everything. ``serve`` wraps it until a signal; ``clarion demo`` runs its scenario in it."""
    # Without CLARION_PUBLIC_URL, every URL Clarion hands out names the address served.
    settings = settings.serving(host, port)
    container = build(settings)  # validates the configuration before touching the database
    try:
        # A database this process cannot write stops it here, with one sentence.
        await prepare_database(container.db, migrate=settings.auto_migrate)
    except BaseException:
        await container.close()
        raise
    await container.start()
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    server: uvicorn.Server | None = None
    try:
        if roles.api:
            config = uvicorn.Config(
                create_app(container), host=host, port=port, log_level=settings.log_level,
                access_log=False, lifespan="off", loop="none",
            )
            server = uvicorn.Server(config)
            api = asyncio.create_task(server.serve(), name="clarion-api")
            tasks.append(api)
            # uvicorn tells that it listens with a flag, not an event: poll it.
            while not server.started and not api.done():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            if api.done():  # uvicorn could not listen (it has logged why)
                raise ConfigurationError(
                    f"cannot listen on {host}:{port}",
                    fix="Choose another port (--port, CLARION_PORT) or stop what uses it.")
            announce(f"Clarion {__version__} listening on http://{host}:{port} "
                     f"({container.db.dialect}); API docs at {settings.public_url}/docs")
        if roles.worker:
            worker = worker_for(container, with_api=roles.api)
            tasks.append(asyncio.create_task(worker.run(stop), name="clarion-worker"))
            tasks.append(asyncio.create_task(
                run_scheduler(container.queue, container.clock, stop, every=SCHEDULE),
                name="clarion-scheduler"))
        yield Running(container, settings.public_url)
    finally:
        stop.set()
        if server is not None:
            server.should_exit = True
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, SystemExit):
                await asyncio.wait_for(task, timeout=30)
        await container.close()


async def serve(settings: Settings, roles: Roles, *, host: str, port: int,
                announce: Callable[[str], None] = print) -> None:
    """Run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running(settings, roles, host=host, port=port, announce=announce):
        tune_for_service(settings.gc_threshold)  # everything start-up built lives until exit
        await stop.wait()
