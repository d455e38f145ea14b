"""ISO-8601 durations and local times of day as journeys write them.

Only weeks, days, hours, minutes and seconds: a month or a year has no fixed length, so a
journey that waited "P1M" would wait a different time for each person (write "P30D").
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

MAX_WAIT = timedelta(days=90)

_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?")
_LOCAL_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


def parse_duration(text: str) -> timedelta:
    """``PT8S``, ``PT1H30M``, ``P2D``, ``P1W``... ValueError (with the fix) otherwise."""
    match = _DURATION.fullmatch(text.strip().upper()) if isinstance(text, str) else None
    if match is None or text.strip().upper() in ("P", "PT") or text.strip().upper().endswith("T"):
        raise ValueError(f"{text!r} is not an ISO-8601 duration in weeks, days, hours, minutes "
                         "and seconds (e.g. 'PT8S', 'PT1H30M', 'P2D'); months and years are "
                         "refused because their length varies")
    parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
    return timedelta(**parts)


def format_duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    days, rest = divmod(int(seconds), 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    return "P" + (f"{days}D" if days else "") + (f"T{clock}" if clock else ("" if days else "T0S"))


def parse_local_time(text: str) -> time:
    match = _LOCAL_TIME.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a local time of day: write HH:MM, 24-hour (e.g. "
                         "'09:30')")
    return time(int(match.group(1)), int(match.group(2)))


def parse_datetime(text: str) -> datetime:
    """An ISO-8601 date-time with its offset (``Z`` or ``+02:00``): a journey's "until" is
    an instant, so a time without a zone would mean a different moment for each server."""
    try:
        value = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ValueError(f"{text!r} is not an ISO-8601 date-time with a time zone offset "
                         "(e.g. '2027-01-15T09:00:00Z')")
    return value
