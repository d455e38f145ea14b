"""Shared plumbing for commands: settings, a started container, JSON output, error display."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from clarion.bootstrap import Container, build
from clarion.config import Settings, load_settings
from clarion.errors import ClarionError
from clarion.store.preflight import prepare_database

T = TypeVar("T")
console = Console(stderr=True)


def settings() -> Settings:
    """The settings, or a readable list of what is wrong with them (exit code 1)."""
    try:
        return load_settings()
    except ValidationError as exc:
        for err in exc.errors():
            name = "CLARION_" + "_".join(str(p) for p in err["loc"]).upper()
            console.print(f"[red]error[/red] {name}: {err['msg']} (got {err.get('input')!r})")
        console.print("Fix these settings (environment or clarion.env); "
                      "`clarion check-config` shows them all.")
        raise typer.Exit(1) from exc


def run(fn: Callable[[Container], Awaitable[T]], *, migrate: bool = True) -> T:
    """Build the container, apply migrations, run ``fn`` and close; errors exit with code 1."""

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


def fail(exc: ClarionError) -> NoReturn:
    """Print ``exc`` as one line (never wrapped, no markup read into it) and exit with 1."""
    console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
    raise typer.Exit(1) from exc


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
