"""`clarion demo`: one command, nothing outside this machine — Clarion, the three emulators
with simulated devices, a first send to a thousand people, its report, a welcome journey, and
what you need to go on by hand. Ctrl-C stops everything it started; `--once --json` prints one
JSON summary and exits. The work is ``clarion.demo``; this module reads the options and shows
progress and results.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clarion.cli.charts import bar
from clarion.cli.session import console, fail

if TYPE_CHECKING:
    from clarion.demo.scenario import Plan, World
    from clarion.demo.stage import Ports
    from clarion.emulators.devices import AppBehaviour



def demo(
    people: Annotated[int, typer.Option(min=1, max=100_000, help="People to create, each "
                                        "with a phone (iOS or Android).")] = 1000,
    web: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of people who also "
                                       "subscribed a browser (Web Push).")] = 0.2,
    delivered: Annotated[float, typer.Option(min=0.0, max=1.0, help="Probability that an "
                                             "app reports Delivered.")] = 0.95,
    opened: Annotated[float, typer.Option(min=0.0, max=1.0, help="Probability that a "
                                          "notification is opened (reported Opened).")] = 0.35,
    clicked: Annotated[float, typer.Option(min=0.0, max=1.0, help="Probability that an "
                                           "opened notification's link is followed.")] = 0.5,
    delay_ms: Annotated[float, typer.Option(min=0.0, max=60_000.0, help="Each report or "
                                            "click waits a random 0..this after the step "
                                            "before it.")] = 1000.0,
    dead: Annotated[float, typer.Option("--dead-tokens", min=0.0, max=1.0, help="Share of "
                                        "registered devices whose app is uninstalled before "
                                        "the send (dead tokens).")] = 0.03,
    seed: Annotated[int | None, typer.Option(help="Seed of every random draw (replay a "
                                             "demo).")] = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Clarion's port (0: any free "
                                      "port).")] = 0,
    apns_port: Annotated[int, typer.Option(min=0, max=65535)] = 0,
    fcm_port: Annotated[int, typer.Option(min=0, max=65535)] = 0,
    webpush_port: Annotated[int, typer.Option(min=0, max=65535)] = 0,
    timeout: Annotated[float, typer.Option(min=1.0, help="Seconds each wait may last.")
                       ] = 120.0,
    once: Annotated[bool, typer.Option("--once", help="Exit after the summary instead of "
                                       "running until Ctrl-C.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON "
                                          "object on stdout (no progress bars).")] = False,
) -> None:
    """Run Clarion with the APNs, FCM and Web Push emulators and simulated devices on this
    machine: an org, an app with iOS, Android and Web, PEOPLE people whose devices register
    through the CIJ API, one send with a link to all of them, the devices' Delivered/Opened
    reports and clicks, and the report. Then keep running for you to explore (Ctrl-C stops
    everything), or exit with --once."""
    from clarion.cli.logging_policy import configure_logging
    from clarion.demo.scenario import Plan
    from clarion.demo.stage import Ports
    from clarion.emulators.devices import AppBehaviour
    from clarion.errors import ClarionError

    configure_logging("warning")  # progress bars, not log lines; warnings still show
    behaviour = AppBehaviour(delivered=delivered, opened=opened, clicked=clicked,
                             delay_ms=delay_ms)
    plan = Plan(people=people, web_share=web, dead_share=dead, timeout=timeout)
    ports = Ports(clarion=port, apns=apns_port, fcm=fcm_port, webpush=webpush_port)
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_main(plan, behaviour, ports, seed, once=once, as_json=as_json))
    except ClarionError as exc:
        fail(exc)
    except KeyboardInterrupt:
        console.print("stopped: Clarion and the emulators are down, the demo's files removed")


async def _main(plan: Plan, behaviour: AppBehaviour, ports: Ports, seed: int | None, *,
                once: bool, as_json: bool) -> None:
    import random

    from clarion.demo.scenario import World, play
    from clarion.demo.stage import stage
    from clarion.demo.summary import summary

    task = asyncio.current_task()
    assert task is not None
    # SIGTERM stops it like Ctrl-C: the task is cancelled and every `async with` cleans up.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    with Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, disable=as_json) as progress:
        tasks: dict[str, Any] = {}

        def track(step: str, done: int, total: int | None) -> None:
            if step not in tasks:
                tasks[step] = progress.add_task(step, total=total)
            progress.update(tasks[step], completed=done, total=total)

        async with stage(behaviour, ports=ports, seed=seed) as running:
            world = await play(World(stage=running, plan=plan, rng=random.Random(seed)), track)
            progress.stop()
            result = summary(world)
            if as_json:
                sys.stdout.write(json.dumps(result) + "\n")
                sys.stdout.flush()
            else:
                _show(world, result)
            if once:
                return
            console.print("Clarion and the emulators keep running: [bold]Ctrl-C[/bold] stops "
                          "them and removes the demo's files.")
            await asyncio.Event().wait()


def _show(world: World, result: dict[str, Any]) -> None:
    from dataclasses import replace

    from clarion.cli.reports import print_report

    assert world.report is not None
    # The totals as `clarion reports show --send` prints them; the platforms in the funnel.
    print_report(replace(world.report, platforms={}, by_platform=False))
    platforms = list(result["platforms"])
    funnel = [("Devices targeted", "devices"), ("Sent", "sent"),
              ("Delivered (reported)", "delivered"), ("Opened", "opened"),
              ("Clicked", "clicked"), ("Invalid tokens", "invalid_tokens")]
    top = max(result["devices"], 1)
    table = Table("devices", "total", *platforms, "",
                  title=f"Send {world.send_id} to {result['people']:,} people")
    for column in table.columns[1:-1]:
        column.justify = "right"
    for name, key in funnel:
        table.add_row(name, f"{result[key]:,}",
                      *(f"{result['platforms'][p][key]:,}" for p in platforms),
                      bar(result[key], top, 30))
    console.print(table)
    if world.journey is not None:
        from clarion.cli.journeys import chart

        console.print(chart(world.journey))
    _show_continuation(result["continue"])


def _show_continuation(c: dict[str, Any]) -> None:
    ports = c["emulators"]
    rows = [
        ("base URL", f"{c['base_url']}  (API docs {c['base_url']}/docs)"),
        ("org id", c["org_id"]), ("admin token", c["admin_token"]), ("app id", c["app_id"]),
        ("API token", c["api_token"]), ("send id", c["send_id"]),
        ("journey id", c["journey_id"]),
        ("emulators", f"APNs https://127.0.0.1:{ports['apns']}, FCM http://127.0.0.1:"
                      f"{ports['fcm']}, Web Push http://127.0.0.1:{ports['webpush']}"),
    ]
    table = Table(show_header=False, title="Go on by hand")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in rows:
        table.add_row(name, escape(value))
    console.print(table)
    lines = [
        "# the report over the API, and with the CLI on the demo's database:",
        f"curl -s -H 'Authorization: Bearer {c['admin_token']}' "
        f"'{c['base_url']}/v1/orgs/{c['org_id']}/reports?scope=send&id={c['send_id']}'",
        f"{c['cli_env']} clarion reports show --org {c['org_id']} --send {c['send_id']}",
        f"{c['cli_env']} clarion journeys report --org {c['org_id']} --journey "
        f"{c['journey_id']}",
        "# another `clarion serve` against these emulators (in a directory of its own):",
        " ".join(c["env"]) + " clarion serve --port 8001",
    ]
    for line in lines:
        console.print(escape(line), soft_wrap=True, style="dim" if line[0] == "#" else None)
