"""`clarion apps …` (being written)."""

from __future__ import annotations

import typer

app = typer.Typer(help="apps", no_args_is_help=True)
