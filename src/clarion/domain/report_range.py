"""Report ranges: which hours a report covers, checked and widened to whole buckets. Pure.

Roll-ups are hourly (epoch seconds // 3600, UTC), so a report covers whole hours, and a daily
series whole UTC days. Requested times are checked here (1970–9000: nothing is reported
outside, and the extremes overflow time arithmetic) and ranges are capped (31 days hourly,
400 days daily) so that no request can ask for an unbounded amount of work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from clarion.errors import InvalidInput

Granularity = Literal["hour", "day"]
GRANULARITIES: tuple[str, ...] = get_args(Granularity)
MAX_SPAN: dict[str, timedelta] = {"hour": timedelta(days=31), "day": timedelta(days=400)}
HOURS = {"hour": 1, "day": 24}


def utc(at: datetime) -> datetime:
    """Aware UTC (a naive time is taken to be UTC already, as SQLite returns them)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def checked_time(at: datetime, field: str) -> datetime:
    """A requested time as aware UTC, or InvalidInput when it is outside 1970–9000 (nothing
    is reported outside, and the extremes overflow time arithmetic)."""
    try:
        value: datetime | None = utc(at)
    except (OverflowError, ValueError):
        value = None
    if value is None or not EARLIEST <= value < LATEST:
        raise InvalidInput(f"{field} {at.isoformat()} is out of range", field=field,
                           fix="Give a time between 1970 and 9000 (ISO 8601, e.g. "
                               "2026-01-31T12:00:00Z).")
    return value


def epoch_hour(at: datetime) -> int:
    return int(utc(at).timestamp()) // 3600


def hour_start(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, UTC)


@dataclass(frozen=True, slots=True)
class HourRange:
    """``[start, end)`` in epoch hours, aligned to the granularity."""

    start: int
    end: int
    granularity: Granularity

    @property
    def since(self) -> datetime:
        return hour_start(self.start)

    @property
    def until(self) -> datetime:
        return hour_start(self.end)

    def buckets(self) -> list[int]:
        return list(range(self.start, self.end, HOURS[self.granularity]))


def report_range(since: datetime, until: datetime, granularity: str) -> HourRange:
    """Check a requested range and widen it to whole buckets (hours, or UTC days).

    Roll-ups are hourly, so a range can only cover whole hours; widening (rather than cutting)
    keeps every fact between ``since`` and ``until`` in the report, and the report states the
    range it actually covers."""
    if granularity not in GRANULARITIES:
        raise InvalidInput(f"granularity {granularity!r} is not hour or day",
                           field="granularity", fix="Use granularity=hour or granularity=day.")
    since, until = checked_time(since, "since"), checked_time(until, "until")
    if until <= since:
        raise InvalidInput("until must be later than since", field="until",
                           fix="Give since < until (ISO 8601, e.g. 2026-01-01T00:00:00Z).")
    if until - since > MAX_SPAN[granularity]:
        days = MAX_SPAN[granularity].days
        raise InvalidInput(
            f"a {granularity}ly report covers at most {days} days "
            f"(asked for {(until - since) / timedelta(days=1):.1f})", field="since",
            fix=("Use granularity=day for longer ranges, or a shorter range."
                 if granularity == "hour" else "Ask for at most 400 days at a time."))
    step = HOURS[granularity]
    start = epoch_hour(since) // step * step
    end = -(-_ceil_hour(until) // step) * step
    return HourRange(start, end, granularity)  # type: ignore[arg-type]


def default_range(now: datetime, granularity: str, since: datetime | None,
                  until: datetime | None) -> tuple[datetime, datetime]:
    """Fill a missing end with now, a missing start with 24 hours (hourly) or 7 days before."""
    end = checked_time(until, "until") if until is not None else utc(now)
    start = checked_time(since, "since") if since is not None else end - (
        timedelta(hours=24) if granularity == "hour" else timedelta(days=7))
    return start, end


def trailing_range(now: datetime, hours: int, granularity: str) -> tuple[datetime, datetime]:
    """The last ``hours`` hours as whole buckets ending with the current one: ``24h`` hourly
    is 24 hourly buckets, this hour the last; ``7d`` daily is 7 UTC days, today the last.
    A duration that is not a whole number of buckets (``36h`` daily) is widened as any range
    is (see ``report_range``)."""
    step = HOURS.get(granularity, 1)
    now = utc(now)
    if hours <= 0 or hours % step:
        return now - timedelta(hours=max(hours, 0)), now
    end = hour_start(-(-_ceil_hour(now) // step) * step)
    if end == now:  # exactly on a bucket's start: that bucket has begun
        end += timedelta(hours=step)
    return end - timedelta(hours=hours), end


def _ceil_hour(at: datetime) -> int:
    seconds = utc(at).timestamp()
    return -int(-seconds // 3600)
