"""`clarion jobs …`: look at the job queue, retry dead-lettered jobs, purge finished ones."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from clarion.cli.session import console, emit_json, fail, run
from clarion.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from clarion.bootstrap import Container
    from clarion.store.job_operations import JobInfo

STATES = ("queued", "running", "done", "dead")  # clarion.store.job_operations.STATES

app = typer.Typer(help="The job queue: list, count, retry dead jobs, purge.",
                  no_args_is_help=True)


def _when(epoch_ms: int, sep: str = " ") -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime(f"%Y-%m-%d{sep}%H:%M:%S")


def _short(value: str | None, width: int) -> str:
    if not value:
        return ""
    line = value.strip().splitlines()[0] if value.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def _as_dict(job: JobInfo) -> dict[str, object]:
    return {
        "id": job.id, "kind": job.kind, "state": job.state, "attempts": job.attempts,
        "max_attempts": job.max_attempts, "run_at": _when(job.run_at_ms, "T") + "Z",
        "created_at": _when(job.created_at_ms, "T") + "Z", "last_error": job.last_error,
        "payload": job.payload,
    }


@app.command("list")
def list_(
    state: Annotated[str | None, typer.Option(
        help=f"Only jobs in this state ({', '.join(STATES)}).")] = None,
    kind: Annotated[str | None, typer.Option(help="Only jobs of this kind.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List jobs, newest first (e.g. `clarion jobs list --state dead`)."""

    async def _do(c: Container) -> list[JobInfo]:
        return await c.queue.list_jobs(state=state, kind=kind, limit=limit)

    rows = run(_do)
    if as_json:
        emit_json([_as_dict(job) for job in rows])
        return
    if not rows:
        console.print("no jobs" + (f" in state {state}" if state else "")
                      + (f" of kind {kind}" if kind else ""))
        return
    table = Table()
    for column in ("id", "kind", "state", "attempts", "run at (UTC)"):
        table.add_column(column, no_wrap=True)
    table.add_column("payload", no_wrap=True, overflow="ellipsis", max_width=40)
    table.add_column("last error", no_wrap=True, overflow="ellipsis", max_width=60)
    for job in rows:
        table.add_row(
            str(job.id), job.kind, job.state, f"{job.attempts}/{job.max_attempts}",
            _when(job.run_at_ms), _short(json.dumps(job.payload), 40), _short(job.last_error, 60),
        )
    console.print(table)


@app.command("counts")
def counts(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """How many jobs are queued, running, done and dead."""

    async def _do(c: Container) -> dict[str, int]:
        return await c.queue.counts()

    result = run(_do)
    if as_json:
        emit_json(result)
        return
    table = Table("state", "jobs")
    for state, n in result.items():
        table.add_row(state, str(n))
    console.print(table)


def _on_dead_jobs(ids: list[int] | None, all_dead: bool, verb: str, done: str,
                  act: Callable[[Container, list[int] | None], Awaitable[int]]) -> None:
    """Run ``act`` on the named dead jobs (or every one with --all) and say how many."""
    if bool(ids) == all_dead:
        fail(InvalidInput(f"name the dead jobs to {verb}, or pass --all (not both)",
                          fix="`clarion jobs list --state dead` shows them."), code=2)

    async def _do(c: Container) -> int:
        return await act(c, None if all_dead else ids)

    n = run(_do)
    if n == 0:
        fail(NotFound("no dead job matched",
                      fix="`clarion jobs list --state dead` shows the dead ones."))
    console.print(f"{n} {done}")


@app.command("retry")
def retry(
    ids: Annotated[list[int] | None, typer.Argument(help="Ids of dead jobs to retry.")] = None,
    all_dead: Annotated[bool, typer.Option("--all", help="Retry every dead job.")] = False,
) -> None:
    """Put dead jobs back in the queue (attempts reset, due now)."""
    _on_dead_jobs(ids, all_dead, "retry", "job(s) queued again",
                  lambda c, chosen: c.queue.retry_dead(job_ids=chosen))


@app.command("discard")
def discard(
    ids: Annotated[list[int] | None, typer.Argument(help="Ids of dead jobs to delete.")] = None,
    all_dead: Annotated[bool, typer.Option("--all", help="Delete every dead job.")] = False,
) -> None:
    """Delete dead jobs that must not run again (look first: `clarion jobs list --state dead`).

    What a dead job carried is gone with it: a registration job's requests stay Pending (or,
    untracked, are dropped), a delivery job's notifications are not sent."""
    _on_dead_jobs(ids, all_dead, "discard", "dead job(s) discarded",
                  lambda c, chosen: c.queue.discard_dead(job_ids=chosen))


@app.command("purge")
def purge() -> None:
    """Delete finished jobs older than CLARION_JOB_DONE_RETENTION_SECONDS now."""

    async def _do(c: Container) -> int:
        return await c.queue.purge_done()

    console.print(f"{run(_do)} finished job(s) purged")
