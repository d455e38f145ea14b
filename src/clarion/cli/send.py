"""`clarion send`: queue a notification to a person's devices, optionally wait for outcomes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from clarion.cli.session import console, emit_json, run
from clarion.errors import RetryLater

if TYPE_CHECKING:
    from clarion.bootstrap import Container
    from clarion.domain.sends import SendRead


def send(
    org: Annotated[str, typer.Option(help="Organization id.")],
    app_id: Annotated[str, typer.Option("--app", help="App id.")],
    user: Annotated[list[str] | None, typer.Option(
        help="Person id (repeat for several).")] = None,
    segment: Annotated[str | None, typer.Option(
        help="Or a segment id: every member, read page by page as the send goes.")] = None,
    title: Annotated[str, typer.Option(help="Notification title.")] = "",
    body: Annotated[str, typer.Option(help="Notification body.")] = "",
    subtitle: Annotated[str, typer.Option(help="iOS subtitle.")] = "",
    link: Annotated[str | None, typer.Option(help="URL or app link opened on tap.")] = None,
    image: Annotated[str | None, typer.Option(help="https URL of an image.")] = None,
    ttl: Annotated[int, typer.Option(help="Seconds the providers keep trying.")] = 2419200,
    idempotency_key: Annotated[str | None, typer.Option(help="Same key within 24 h: same "
                                                        "send, nothing sent twice.")] = None,
    wait: Annotated[bool, typer.Option(help="Wait until every device has an outcome.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 60.0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Send a notification to every currently valid device of a person (or of everyone in a
    segment) for an app."""
    from pydantic import ValidationError

    from clarion.domain.messages import invalid_input
    from clarion.domain.sends import SendCreate

    message = {"title": title, "subtitle": subtitle, "body": body, "link": link,
               "image_url": image, "ttl": ttl}
    document = {"app_id": app_id, "message": {k: v for k, v in message.items() if v is not None}}
    if user:
        document["user_id" if len(user) == 1 else "user_ids"] = (user[0] if len(user) == 1
                                                                 else user)
    if segment is not None:
        document["segment_id"] = segment

    async def _do(c: Container) -> SendRead:
        try:
            command = SendCreate.model_validate(document)
        except ValidationError as exc:
            raise invalid_input(exc, "send") from exc
        created = await c.sends.create(org, command, idempotency_key=idempotency_key)
        if not wait:
            return created.send
        return await _wait(c, org, created.send.id, timeout, quiet=as_json)

    result = run(_do)
    if as_json:
        emit_json(asdict(result))
        return
    console.print(f"send [bold]{result.id}[/bold]: {result.state}"
                  + ("" if result.succeeded is None else
                     f", {'succeeded' if result.succeeded else 'not sent'}"))
    if result.deliveries:
        table = Table("device", "platform", "state", "reason", "detail")
        for d in result.deliveries:
            table.add_row(d.device_id[:8], d.platform, d.state, d.reason or "", d.detail or "")
        console.print(table)


async def _wait(c: Container, org: str, send_id: str, wait_seconds: float, *, quiet: bool
                ) -> SendRead:
    deadline = time.monotonic() + wait_seconds
    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} devices"), console=console,
                  disable=quiet) as progress:
        task = progress.add_task("delivering", total=None)
        while True:
            current = await c.sends.get(org, send_id, limit=1)
            total = sum(current.counts.values())
            decided = total - current.counts.get("pending", 0)
            waiting = sum(w.deliveries for w in current.waiting)
            progress.update(task, total=total or None, completed=decided,
                            description=current.state + (
                                f" ({waiting} waiting to retry: "
                                f"{', '.join(w.reason for w in current.waiting)})"
                                if waiting else ""))
            if current.state == "done":
                return await c.sends.get(org, send_id)
            if time.monotonic() > deadline:
                raise _still_waiting(org, current, wait_seconds)
            await asyncio.sleep(0.2)


def _still_waiting(org: str, send: SendRead, wait_seconds: float) -> RetryLater:
    """Why the send is not done: the providers' answers when deliveries were tried and wait
    for a retry; else nothing has tried them (no worker?)."""
    from clarion.domain.sends import describe_waiting

    waiting = sum(w.deliveries for w in send.waiting)
    untried = send.counts.get("pending", 0) - waiting
    why = []
    if send.waiting:
        why.append(describe_waiting(send.waiting))
    if untried or send.state in ("queued", "fanning_out"):
        why.append((f"{untried} not tried yet" if untried else f"still {send.state}")
                   + ": is a worker running (`clarion serve` or `clarion worker`)? Check with "
                   "`clarion jobs counts`")
    error = RetryLater(f"send {send.id} is not done after {wait_seconds:.0f} s: "
                       + "; ".join(why))
    error.fix = ("Fix the cause above: the waiting deliveries are retried on their own (until "
                 "CLARION_DELIVERY_MAX_ATTEMPTS or the message's ttl runs out). "
                 if send.waiting else "Start a worker; ") + (
        f"The send stays queued; follow it with GET /v1/orgs/{org}/sends/{send.id}.")
    return error
