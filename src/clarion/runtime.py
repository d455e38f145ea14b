"""Process assembly: what runs in a Clarion process, started and stopped as one.

``running`` (a context manager: ``clarion demo`` runs its scenario inside it) and ``serve``
(``running`` until SIGINT/SIGTERM) start, on one event loop, the API (uvicorn, on the
container's services), a worker (every task of ``clarion.worker.tasks``) and the scheduler of
periodic work (``SCHEDULE``), or any subset of them: ``clarion serve`` (all three), ``clarion
serve --no-worker`` (API only, scale-out), ``clarion worker`` (worker and scheduler). It takes
the API's port before anything else (``bind_listener``: a busy port stops it with one
sentence), migrates the database unless ``CLARION_AUTO_MIGRATE=0``, stops after in-flight work
finishes, and closes everything it opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
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


def bind_listener(host: str, port: int) -> socket.socket:
    """The API's listening socket, bound before anything else starts: a port already taken
    (another `clarion serve`, any program) stops the command here with one sentence, instead
    of after the banner, the migrations and a worker. uvicorn serves on this socket."""
    where = f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ConfigurationError(f"cannot listen on {where}: {exc.strerror}",
                                 fix="Give --host (CLARION_HOST) an address of this machine, "
                                 "e.g. 127.0.0.1 or 0.0.0.0.") from exc
    sock = socket.socket(family, kind, proto)
    try:
        # As uvicorn does: a port left in TIME_WAIT by a stopped server is reusable; one that
        # something listens on is not (Linux and macOS refuse the bind).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(
                f"cannot listen on {where}: the port is already in use (another `clarion "
                "serve`, or another program, listens there)",
                fix="Stop that process, or choose another port with --port (CLARION_PORT)."
            ) from exc
        raise ConfigurationError(f"cannot listen on {where}: {exc.strerror or exc}",
                                 fix="Choose another --host or --port (CLARION_HOST, "
                                 "CLARION_PORT); ports below 1024 need privileges.") from exc
    return sock


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
    listener = bind_listener(host, port) if roles.api else None  # a busy port stops us here
    try:
        container = build(settings)  # validates the configuration before the database
    except BaseException:
        if listener is not None:
            listener.close()
        raise
    try:
        # A database this process cannot write stops it here, with one sentence.
        await prepare_database(container.db, migrate=settings.auto_migrate)
    except BaseException:
        if listener is not None:
            listener.close()
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
            assert listener is not None
            api = asyncio.create_task(server.serve(sockets=[listener]), name="clarion-api")
            tasks.append(api)
            # uvicorn tells that it serves with a flag, not an event: poll it.
            while not server.started and not api.done():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            if api.done():  # uvicorn could not start on the bound socket (it has logged why)
                raise ConfigurationError(
                    f"cannot serve on {host}:{port}",
                    fix="See the log line above; choose another --host or --port.")
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
