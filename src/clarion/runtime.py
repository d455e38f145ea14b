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
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn

from clarion import __version__
from clarion.api.app import create_app
from clarion.bootstrap import Container, build
from clarion.config import Settings
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


async def serve(settings: Settings, roles: Roles, *, host: str, port: int,
                announce: Callable[[str], None] = print) -> None:
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
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks: list[asyncio.Task[None]] = []
    server: uvicorn.Server | None = None
    if roles.worker:
        worker = worker_for(container, with_api=roles.api)
        tasks.append(asyncio.create_task(worker.run(stop), name="clarion-worker"))
        tasks.append(asyncio.create_task(
            run_scheduler(container.queue, container.clock, stop, every=SCHEDULE),
            name="clarion-scheduler"))
    if roles.api:
        config = uvicorn.Config(
            create_app(container), host=host, port=port, log_level=settings.log_level,
            access_log=False, lifespan="off", loop="none",
        )
        server = uvicorn.Server(config)
        tasks.append(asyncio.create_task(server.serve(), name="clarion-api"))
        announce(f"Clarion {__version__} listening on http://{host}:{port} "
                 f"({container.db.dialect}); API docs at {settings.public_url}/docs")
    tune_for_service(settings.gc_threshold)  # everything start-up built lives until exit
    try:
        await stop.wait()
    finally:
        if server is not None:
            server.should_exit = True
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=30)
        await container.close()
