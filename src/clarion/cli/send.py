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
    user: Annotated[list[str], typer.Option(help="Person id (repeat for several).")],
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
    """Send a notification to every currently valid device of a person for an app."""
    from pydantic import ValidationError

    from clarion.domain.messages import invalid_input
    from clarion.domain.sends import SendCreate

    message = {"title": title, "subtitle": subtitle, "body": body, "link": link,
               "image_url": image, "ttl": ttl}
    document = {"app_id": app_id, "message": {k: v for k, v in message.items() if v is not None}}
    document["user_id" if len(user) == 1 else "user_ids"] = user[0] if len(user) == 1 else user

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
            current = await c.sends.get(org, send_id)
            total = sum(current.counts.values())
            decided = total - current.counts.get("pending", 0)
            progress.update(task, total=total or None, completed=decided,
                            description=current.state)
            if current.state == "done":
                return current
            if time.monotonic() > deadline:
                raise RetryLater(
                    f"send {send_id} is still {current.state} after {wait_seconds:.0f} s: "
                    "is a worker running (`clarion serve` or `clarion worker`)? Check with "
                    f"`clarion jobs counts`; the send stays queued.")
            await asyncio.sleep(0.2)
