"""What every command shares: the settings, a started container for the command's work, JSON
output and the display of errors.

Everything heavy (settings, the container and with it SQLAlchemy and the services) is imported
when a command runs, not when the CLI starts: ``clarion --help`` and ``clarion version`` load
none of it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from clarion.bootstrap import Container
    from clarion.config import Settings

T = TypeVar("T")
console = Console(stderr=True)


def settings() -> Settings:
    """The settings, or a readable list of what is wrong with them (exit code 1)."""
    from pydantic import ValidationError

    from clarion.config import load_settings

    try:
        return load_settings()
    except ValidationError as exc:
        for err in exc.errors():
            name = "CLARION_" + "_".join(str(p) for p in err["loc"]).upper()
            console.print(f"[red]error[/red] {name}: {err['msg']} (got {err.get('input')!r})")
        console.print("Fix these settings (environment or clarion.env); "
                      "`clarion check-config` shows them all.")
        raise typer.Exit(1) from exc


def fail(exc: Exception, *, code: int = 1) -> NoReturn:
    """Print an error and exit with ``code``: what went wrong on one line, what to do about it
    (a ``ClarionError``'s ``fix``) on the next. Lines are never wrapped (a command in them
    stays copyable) and no markup is read into them."""
    from clarion.errors import ClarionError

    what, fix = str(exc), ""
    if isinstance(exc, ClarionError):
        what = f"{exc.field}: {exc.message}" if exc.field else exc.message
        fix = exc.fix
    console.print(f"[red]error:[/red] {escape(what)}", soft_wrap=True)
    if fix:
        console.print(f"[bold]fix:[/bold] {escape(fix)}", soft_wrap=True)
    raise typer.Exit(code) from exc


def run(fn: Callable[[Container], Awaitable[T]], *, migrate: bool = True) -> T:
    """Build the container, apply migrations, run ``fn`` and close; errors exit with code 1."""
    import asyncio

    from clarion.bootstrap import build
    from clarion.errors import ClarionError
    from clarion.store.preflight import prepare_database

    async def _main() -> T:
        cfg = settings()
        container = build(cfg)  # validates the configuration first
        try:
            # Admin commands may only read: a read-only database is refused when written to.
            await prepare_database(container.db, migrate=migrate and cfg.auto_migrate,
                                   check_write=False)
            await container.start()
            return await fn(container)
        finally:
            await container.close()

    try:
        return asyncio.run(_main())
    except ClarionError as exc:
        fail(exc)


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
