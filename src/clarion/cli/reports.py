"""`clarion reports …`: report figures as Rich tables and charts, CSV/JSON/SVG, and timelines."""

from __future__ import annotations

import re
import sys
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from clarion.cli.charts import bar, sparkline, svg_chart
from clarion.cli.session import console, emit_json, fail, run
from clarion.domain.report_csv import report_csv
from clarion.domain.report_range import (
    GRANULARITIES,
    Granularity,
    default_range,
    trailing_range,
    utc,
)
from clarion.domain.reports import NO_PLATFORM, RATE_NAMES, Figures, Report, Scope, journey_step_key
from clarion.errors import InvalidInput

if TYPE_CHECKING:
    from clarion.bootstrap import Container
    from clarion.domain.timeline import TimelineEntry

app = typer.Typer(help="Reports: sent, not sent, delivered, opened, clicked, rates; timelines.",
                  no_args_is_help=True)

_LABELS = {
    "inflow": "Inflow (people)", "sent_people": "Sent (people)",
    "sent_devices": "Sent (devices)", "targeted_devices": "Devices targeted",
    "not_sent_people": "Not sent (people)", "not_sent_devices": "Not sent (devices)",
    "blocked": "Blocked (people)", "held": "Held for quiet time (people)",
    "engaged_people": "Engaged (people: opened or clicked)",
}
_RATES = {
    "send_rate": ("Send rate", "sent people / inflow"),
    "delivery_rate": ("Delivery rate", "unique delivered devices / sent devices"),
    "open_rate": ("Open rate", "unique opened people / sent people"),
    "click_through_rate": ("Click-through rate", "unique clicked people / sent people"),
    "click_to_open_rate": ("Click-to-open rate", "unique clicked people / unique opened people"),
    "engagement_rate": ("Engagement rate", "people who opened or clicked / sent people"),
}
_UNITS = {"events": "events", "devices": "unique devices", "people": "unique people"}
DEFAULT_CHART = ["sent_people", "delivered_devices", "opened_people", "clicked_people"]
_RELATIVE = re.compile(r"^(\d+)([hd])$")


def label(column: str) -> str:
    if column in _LABELS:
        return _LABELS[column]
    if ":" in column:
        return "  " + column.split(":", 1)[1].replace("_", " ")
    kind, _, unit = column.rpartition("_")
    return f"{kind.capitalize()} ({_UNITS.get(unit, unit)})"


def relative_hours(value: str | None) -> int | None:
    """``24h`` → 24, ``7d`` → 168; None for anything else (an ISO date)."""
    m = _RELATIVE.match((value or "").strip())
    if m is None:
        return None
    return int(m.group(1)) * (1 if m.group(2) == "h" else 24)


def pick_granularity(granularity: str | None, since: str | None) -> Granularity:
    """The granularity asked for, else hourly for a ``--since`` in hours (``24h``: the last 24
    hours, hour by hour) that fits an hourly report, else daily."""
    if granularity is not None:
        if granularity not in GRANULARITIES:
            raise typer.BadParameter("use hour or day", param_hint="--granularity")
        return "hour" if granularity == "hour" else "day"
    hours = relative_hours(since)
    in_hours = since is not None and since.strip().endswith("h")
    return "hour" if in_hours and hours is not None and hours <= 31 * 24 else "day"


def parse_when(value: str | None, *, now: datetime, option: str) -> datetime | None:
    """ISO 8601 (UTC without an offset) or a duration back from now: ``24h``, ``7d``."""
    if value is None:
        return None
    hours = relative_hours(value)
    if hours is not None:
        return now - timedelta(hours=hours)
    try:
        return utc(datetime.fromisoformat(value.strip()))
    except ValueError as exc:
        raise InvalidInput(f"{option} {value!r} is not a date", field=option,
                           fix="Use ISO 8601 (2026-01-31 or 2026-01-31T12:00:00Z) or a "
                               "duration back from now (24h, 7d).") from exc


def _scope(app_id: str | None, send: str | None, journey: str | None, step: str | None,
           message: str | None) -> tuple[Scope, str | None]:
    options: list[tuple[Scope, str | None]] = [
        ("app", app_id), ("send", send), ("journey", journey), ("message", message)]
    given: list[tuple[Scope, str]] = [(s, v) for s, v in options if v]
    if step:
        if not journey:
            raise InvalidInput("--step needs --journey", field="step",
                               fix="Name the journey with --journey as well.")
        given = [g for g in given if g[0] != "journey"] + [
            ("journey_step", journey_step_key(journey, step))]
    if len(given) > 1:
        raise InvalidInput("choose one of --app, --send, --journey (with --step), --message",
                           fix="Report on one thing at a time; leave all out for the org.")
    return given[0] if given else ("org", None)


@app.command("show")
def show(
    org: Annotated[str, typer.Option(help="Organization id.")],
    app_id: Annotated[str | None, typer.Option("--app", help="Only this app.")] = None,
    send: Annotated[str | None, typer.Option(help="Only this send.")] = None,
    journey: Annotated[str | None, typer.Option(help="Only this journey.")] = None,
    step: Annotated[str | None, typer.Option(help="Only this step (with --journey).")] = None,
    message: Annotated[str | None, typer.Option(help="Only this message.")] = None,
    since: Annotated[str | None, typer.Option(
        help="Start: ISO 8601 (UTC), or 24h / 7d: that many hours or days back, in whole "
        "buckets ending with the current one. Default: 24h (hourly) or 7d (daily).")] = None,
    until: Annotated[str | None, typer.Option(help="End (exclusive). Default: now.")] = None,
    granularity: Annotated[str | None, typer.Option(
        help="hour (≤ 31 days) or day (≤ 400). Default: hour when --since is in hours "
        "(24h), else day.")] = None,
    by_platform: Annotated[bool, typer.Option("--by-platform",
                                              help="Split by platform.")] = False,
    chart: Annotated[list[str] | None, typer.Option(
        help="Series to chart (repeat), e.g. opened_people. Default: sent, delivered, "
             "opened, clicked.")] = None,
    svg: Annotated[Path | None, typer.Option(help="Also write the chart to this SVG file.")
                   ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """Report figures and rates over a range, with a chart of the series."""
    gran = pick_granularity(granularity, since)
    charted = chart or DEFAULT_CHART

    async def _do(c: Container) -> Report:
        now = c.clock.now()
        scope, scope_id = _scope(app_id, send, journey, step, message)
        relative = since or ("24h" if gran == "hour" else "7d")
        back = relative_hours(relative)
        # Whole buckets back from the current one: hours hourly, days either way. Hours in a
        # daily report are widened to the days they touch, as any range is.
        in_days = relative.strip().endswith("d")
        if until is None and back is not None and (gran == "hour" or in_days):
            start, end = trailing_range(now, back, gran)
        else:
            start, end = default_range(now, gran, parse_when(since, now=now, option="since"),
                                       parse_when(until, now=now, option="until"))
        return await c.reports.report(org, scope=scope, scope_id=scope_id, since=start,
                                      until=end, granularity=gran, by_platform=by_platform)

    report = run(_do)
    known = dict(report.totals.columns())
    unknown = [n for n in charted if n not in known]
    if unknown:
        raise typer.BadParameter(f"{', '.join(unknown)} is not a figure; choose among "
                                 f"{', '.join(known)}", param_hint="--chart")
    labels, series = _series(report, charted)
    if svg is not None:
        try:
            svg.write_text(svg_chart(title=_title(report), labels=labels,
                                     series={label(n).strip(): v for n, v in series.items()}))
        except OSError as exc:
            fail(InvalidInput(f"cannot write {svg}: {exc.strerror or exc}", field="--svg",
                              fix="Choose a writable path for --svg."))
        console.print(f"chart written to {svg}")
    if as_json:
        emit_json(report.as_dict())
        return
    if as_csv:
        sys.stdout.write(report_csv(report))
        return
    print_report(report, charted)


def print_report(report: Report, charted: list[str] | None = None) -> None:
    """The title, figures, rates and the chart of ``charted`` series (default: sent,
    delivered, opened, clicked), as `reports show` prints them (`clarion demo` shows its send
    the same way)."""
    labels, series = _series(report, charted or DEFAULT_CHART)
    console.print(f"[bold]{_title(report)}[/bold]")
    console.print(_figures_table(report))
    console.print(_rates_table(report))
    _print_series(report.granularity, labels, series)


def _series(report: Report, charted: list[str]) -> tuple[list[str], dict[str, list[int]]]:
    series = {name: [dict(b.figures.columns()).get(name, 0) for b in report.series]
              for name in charted}
    return [_bucket_label(report, b.start) for b in report.series], series


def _title(report: Report) -> str:
    what = "organization" if report.scope == "org" else f"{report.scope} {report.scope_id}"
    fmt = "%Y-%m-%d %H:%M" if report.granularity == "hour" else "%Y-%m-%d"
    return (f"{what}: {report.since:{fmt}} → {report.until:{fmt}} UTC "
            f"({'hourly' if report.granularity == 'hour' else 'daily'})")


def _bucket_label(report: Report, start: datetime) -> str:
    return f"{start:%m-%d %H:00}" if report.granularity == "hour" else f"{start:%Y-%m-%d}"


def _figures_table(report: Report) -> Table:
    columns: list[tuple[str, Figures]] = [("total", report.totals),
                                          *report.platforms.items()]
    table = Table("figure", *(name for name, _ in columns), title="Figures")
    for c in table.columns[1:]:
        c.justify = "right"
    values = [dict(f.columns()) for _, f in columns]
    for name, _ in report.totals.columns():
        table.add_row(label(name), *(f"{v.get(name, 0):,}" for v in values),
                      style=None if ":" in name else "bold")
    return table


def _rates_table(report: Report) -> Table:
    columns = [("total", report.totals),
               *((p, f) for p, f in report.platforms.items() if p != NO_PLATFORM)]
    table = Table("rate", *(name for name, _ in columns), "definition", title="Rates")
    rates = [(f.rates.as_dict(), f.not_reported) for _, f in columns]
    for name in RATE_NAMES:
        title, definition = _RATES[name]
        table.add_row(title, *("not reported" if name in unknown else
                               "–" if r[name] is None else f"{r[name]:.1%}"
                               for r, unknown in rates), definition)
    table.caption = ("not reported: the apps reported none of the rate's inputs in this range "
                     "(unknown, not 0 %); –: nothing to divide by")
    return table


def _print_series(granularity: str, labels: list[str], series: dict[str, list[int]]) -> None:
    if not labels:
        return
    names = [label(n).strip() for n in series]
    if len(labels) <= 48:  # few buckets: a table, with a bar per bucket for the first series
        first = next(iter(series))
        top = max(series[first], default=0)
        width = max(10, min(40, console.width - 14 - sum(len(n) + 3 for n in names) - 4))
        table = Table("period", *names, f"▏{names[0]}", title="Series")
        for col in table.columns[1:-1]:
            col.justify = "right"
        table.columns[-1].no_wrap = True
        for i, name in enumerate(labels):
            table.add_row(name, *(f"{v[i]:,}" for v in series.values()),
                          bar(series[first][i], top, width))
        console.print(table)
        return
    # Many buckets: one line per day (a character per hour) or per week (a character per day),
    # all on one scale per figure, so the lines compare like rows of a heat map.
    per_line = 24 if granularity == "hour" else 7
    what = "day, one character per hour" if per_line == 24 else "week, one character per day"
    console.print(f"[bold]Series[/bold] ({len(labels)} buckets; a line per {what})")
    for name, values in zip(names, series.values(), strict=True):
        top = max(values, default=0)
        console.print(f"[bold]{name}[/bold] (max {top:,})")
        for i in range(0, len(values), per_line):
            console.print(f"  {labels[i]:>11} {sparkline(values[i:i + per_line], top)}")


@app.command("timeline")
def timeline(
    org: Annotated[str, typer.Option(help="Organization id.")],
    person: Annotated[str, typer.Option(help="Person id (contact, lead or profile).")],
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    before: Annotated[str | None, typer.Option(help="Only older entries (ISO 8601).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every send to a person (each device's outcome) and every interaction, newest first."""

    async def _do(c: Container) -> list[TimelineEntry]:
        when = parse_when(before, now=c.clock.now(), option="before")
        return await c.reports.timeline(org, person, limit=limit, before=when)

    entries = run(_do)
    if as_json:
        emit_json([asdict(e) for e in entries])
        return
    if not entries:
        console.print(f"Nothing yet for person {person}"
                      + (f" before {before}" if before else "")
                      + ": no send named them and they reported no interaction.",
                      markup=False,
                      soft_wrap=True)
        return
    table = Table("time (UTC)", "what", "send", "detail", title=f"Timeline of {person}")
    for e in entries:
        if e.kind == "send":
            devices = ", ".join(f"{d.platform} {d.state}" + (f" ({d.reason})" if d.reason
                                                             else "") for d in e.devices)
            detail = f"{e.outcome}: {e.title or ''}" + (f" — {devices}" if devices else "")
        elif e.kind in ("held", "released", "blocked"):
            detail = (e.reason or "") + (f" until {e.until:%Y-%m-%d %H:%M} UTC"
                                         if e.until else "")
        else:
            detail = f"{e.platform} device {(e.device_id or '')[:8]} via {e.source}"
        table.add_row(f"{e.at:%Y-%m-%d %H:%M:%S}", e.kind, e.send_id[:8], detail)
    console.print(table)
