"""Quiet times: when a push may not leave, and the instant it may, in the person's own clock.

A quiet-time profile holds rules per message category (``commercial`` and ``transactional``):
weekly windows (``{"days": ["sat", "sun"], "start": "21:00", "end": "08:00"}``) and quiet dates
(holidays, whole local days). A profile has general rules and, optionally, advanced rules that
apply to people matching fields (country, region, state, phone prefix…): evaluated top to
bottom, the first rule whose every condition matches wins, else the general rules (as CIJ's
compliance profiles do).

Times are wall-clock times in a time zone: the person's, else the journey's, else the org's
(:func:`zone_for`). A window whose end is not after its start runs overnight: the days name the
evening it starts on (``fri 21:00 → sat 08:00`` for ``"days": ["fri"]``), which is CIJ's pair of
rules (evening to midnight, midnight to morning) written as one.

Daylight saving is handled on the wall clock: "quiet until 08:00" ends when the person's clock
shows 08:00, whatever the offset. An end that does not exist that day (it falls in the hour a
spring-forward skips) ends at the first instant the clock passes it; an end that happens twice
(the hour a fall-back repeats) ends at the first. :func:`quiet_until` chains adjacent quiet
periods (a night window running into a holiday into the next night) and answers the UTC instant
a push held now may leave, or ``None`` when it may leave now.

Pure: no I/O, no clock; ``zoneinfo`` data only. Hand-written because no library evaluates
weekly wall-clock windows with gaps and folds (``dateutil.rrule`` generates occurrences but does
not answer "is this instant inside, and when does it end" across DST).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clarion.errors import InvalidInput

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# A chain of quiet periods longer than this is a profile that never lets anything out (every
# day quiet): refuse it at save time rather than hold pushes for ever.
MAX_CHAIN = timedelta(days=14)


class Category(StrEnum):
    COMMERCIAL = "commercial"
    TRANSACTIONAL = "transactional"


@dataclass(frozen=True, slots=True)
class Window:
    """Quiet from ``start`` to ``end`` (wall clock) on ``days`` (0 = Monday); overnight when
    ``end <= start``, then ``days`` are the evenings it starts on."""

    days: frozenset[int]
    start: time
    end: time

    @property
    def overnight(self) -> bool:
        return self.end <= self.start

    def end_of(self, local: datetime) -> date | None:
        """The local date on which the window containing ``local`` ends, or ``None`` when
        ``local`` is outside it."""
        wall = local.time().replace(tzinfo=None, fold=0)
        day = local.weekday()
        if not self.overnight:
            if day in self.days and self.start <= wall < self.end:
                return local.date()
            return None
        if day in self.days and wall >= self.start:
            return local.date() + timedelta(days=1)
        if (day - 1) % 7 in self.days and wall < self.end:
            return local.date()
        return None


@dataclass(frozen=True, slots=True)
class QuietRules:
    """The quiet windows and quiet dates of one message category."""

    windows: tuple[Window, ...] = ()
    dates: frozenset[date] = frozenset()

    @property
    def empty(self) -> bool:
        return not self.windows and not self.dates


@dataclass(frozen=True, slots=True)
class RuleSet:
    commercial: QuietRules = QuietRules()
    transactional: QuietRules = QuietRules()

    def of(self, category: Category) -> QuietRules:
        return self.commercial if category is Category.COMMERCIAL else self.transactional


@dataclass(frozen=True, slots=True)
class AdvancedRule:
    """Applies to people whose fields match every condition (a field → accepted values; a
    value ending in ``*`` is a prefix, for phone prefixes such as ``+1*``)."""

    name: str
    when: Mapping[str, tuple[str, ...]]
    rules: RuleSet

    def matches(self, facts: Mapping[str, object]) -> bool:
        for name, accepted in self.when.items():
            value = facts.get(name)
            if value is None:
                return False
            text = str(value).casefold()
            if not any(_accepts(a.casefold(), text) for a in accepted):
                return False
        return True


def _accepts(accepted: str, text: str) -> bool:
    return text.startswith(accepted[:-1]) if accepted.endswith("*") else text == accepted


@dataclass(frozen=True, slots=True)
class QuietProfile:
    name: str
    general: RuleSet = RuleSet()
    advanced: tuple[AdvancedRule, ...] = field(default_factory=tuple)

    def rules_for(self, facts: Mapping[str, object], category: Category) -> QuietRules:
        """First matching advanced rule, top to bottom, else the general rules."""
        for rule in self.advanced:
            if rule.matches(facts):
                return rule.rules.of(category)
        return self.general.of(category)


def zone_for(*names: str | None) -> ZoneInfo:
    """The first usable zone of ``names`` (person's, journey's, org's), else UTC."""
    for name in names:
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def is_quiet(rules: QuietRules, zone: tzinfo, at: datetime) -> bool:
    local = at.astimezone(zone)
    return local.date() in rules.dates or any(w.end_of(local) is not None for w in rules.windows)


def quiet_until(rules: QuietRules, zone: tzinfo, now: datetime) -> datetime | None:
    """``None`` when a push may leave at ``now``; else the first UTC instant it may."""
    if rules.empty:
        return None
    at = now.astimezone(UTC)
    while True:
        end = _period_end(rules, zone, at)
        if end is None:
            return None if at == now.astimezone(UTC) else at
        if end - now > MAX_CHAIN:
            raise InvalidInput(
                "these quiet times never end (more than 14 days in a row are quiet): "
                "shorten the windows or remove quiet dates",
                code="quiet_times_never_end",
            )
        at = end


def _period_end(rules: QuietRules, zone: tzinfo, at: datetime) -> datetime | None:
    """The latest end of the quiet periods containing ``at`` (UTC), or ``None``."""
    local = at.astimezone(zone)
    ends: list[datetime] = []
    if local.date() in rules.dates:
        ends.append(_end_after(zone, local.date() + timedelta(days=1), time(0, 0), at))
    for window in rules.windows:
        day = window.end_of(local)
        if day is not None:
            ends.append(_end_after(zone, day, window.end, at))
    return max(ends) if ends else None


def _end_after(zone: tzinfo, day: date, wall: time, at: datetime) -> datetime:
    end = wall_to_utc(zone, day, wall)
    if end > at:
        return end
    # Inside the hour a fall-back repeats, second time round: the clock shows the end again
    # one offset later.
    again = datetime.combine(day, wall).replace(tzinfo=zone, fold=1).astimezone(UTC)
    return again if again > at else at + timedelta(minutes=1)


def wall_to_utc(zone: tzinfo, day: date, wall: time) -> datetime:
    """The first UTC instant at which the clock in ``zone`` shows ``day wall`` or later."""
    naive = datetime.combine(day, wall)
    early = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    late = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    first, second = min(early, late), max(early, late)
    for candidate in (first, second):
        if _wall(candidate, zone) == naive:
            return candidate  # exists (the first occurrence when repeated)
    # In a gap: the clock jumps over ``wall``; find the jump, to the second.
    lo, hi = first, second
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if _wall(mid, zone) >= naive:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0) if _wall(hi.replace(microsecond=0), zone) >= naive else hi


def _wall(instant: datetime, zone: tzinfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


# ---- documents (the JSON a profile is written in) ------------------------------------------


def _bad(where: str, message: str) -> InvalidInput:
    return InvalidInput(message, field=where, code="invalid_quiet_times")


def _clock(text: object, where: str) -> time:
    match = _HHMM.match(text) if isinstance(text, str) else None
    if match is None:
        raise _bad(where, f"{text!r} is not a time of day: write it as HH:MM, "
                           "24-hour (e.g. \"21:00\")")
    return time(int(match.group(1)), int(match.group(2)))


def _days(value: object, where: str) -> frozenset[int]:
    if not isinstance(value, list) or not value:
        raise _bad(where, f"give the days as a non-empty list of {', '.join(DAYS)}")
    out: set[int] = set()
    for item in value:
        key = str(item).casefold()[:3]
        if key not in DAYS:
            raise _bad(where, f"{item!r} is not a day: use {', '.join(DAYS)}")
        out.add(DAYS.index(key))
    return frozenset(out)


def _rules(doc: object, where: str) -> QuietRules:
    if doc is None:
        return QuietRules()
    if not isinstance(doc, Mapping):
        raise _bad(where, 'expected an object with "windows" and "dates"')
    windows = []
    for i, item in enumerate(_list(doc.get("windows"), f"{where}.windows")):
        at = f"{where}.windows[{i}]"
        if not isinstance(item, Mapping):
            raise _bad(at, 'expected {"days": […], "start": "HH:MM", "end": "HH:MM"}')
        start, end = _clock(item.get("start"), f"{at}.start"), _clock(item.get("end"), f"{at}.end")
        windows.append(Window(_days(item.get("days", list(DAYS)), f"{at}.days"), start, end))
    dates = set()
    for i, item in enumerate(_list(doc.get("dates"), f"{where}.dates")):
        try:
            dates.add(date.fromisoformat(str(item)))
        except ValueError:
            raise _bad(f"{where}.dates[{i}]",
                           f"{item!r} is not a date: write YYYY-MM-DD") from None
    return QuietRules(tuple(windows), frozenset(dates))


def _list(value: object, where: str) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(where, "expected a list")
    return value


def _ruleset(doc: object, where: str) -> RuleSet:
    if doc is None:
        return RuleSet()
    if not isinstance(doc, Mapping):
        raise _bad(where, 'expected {"commercial": …, "transactional": …}')
    unknown = set(doc) - {"commercial", "transactional"}
    if unknown:
        raise _bad(where, f"unknown key {sorted(unknown)[0]!r}: rules are given per "
                           "category, \"commercial\" and \"transactional\"")
    return RuleSet(_rules(doc.get("commercial"), f"{where}.commercial"),
                   _rules(doc.get("transactional"), f"{where}.transactional"))


def profile_from_document(doc: Mapping[str, object]) -> QuietProfile:
    """Parse and check a profile document; every error names the field."""
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _bad("name", "give the quiet-time profile a name")
    advanced = []
    for i, item in enumerate(_list(doc.get("advanced"), "advanced")):
        at = f"advanced[{i}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("when"), Mapping):
            raise _bad(at, 'expected {"name": …, "when": {"country": ["FR"]}, "rules": {…}}')
        when = {str(k): tuple(str(v) for v in _as_list(vals)) for k, vals in item["when"].items()}
        if not when or any(not v for v in when.values()):
            raise _bad(f"{at}.when", "give at least one field with at least one value")
        advanced.append(AdvancedRule(str(item.get("name") or f"rule {i + 1}"), when,
                                     _ruleset(item.get("rules"), f"{at}.rules")))
    profile = QuietProfile(name.strip(), _ruleset(doc.get("general"), "general"), tuple(advanced))
    for rules in _all_rules(profile):
        _check_ends(rules)
    return profile


def _as_list(value: object) -> Iterable[object]:
    return value if isinstance(value, list) else [value]


def _all_rules(profile: QuietProfile) -> Iterable[QuietRules]:
    for ruleset in (profile.general, *(r.rules for r in profile.advanced)):
        yield ruleset.commercial
        yield ruleset.transactional


def _check_ends(rules: QuietRules) -> None:
    """Refuse windows that cover every moment of the week (nothing would ever leave)."""
    if not rules.windows:
        return
    monday = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday; UTC: no DST to blur the check
    for minute in range(0, 7 * 24 * 60, 15):
        if not is_quiet(QuietRules(rules.windows), UTC, monday + timedelta(minutes=minute)):
            return
    raise InvalidInput("these quiet windows cover the whole week: nothing would ever be sent",
                       code="quiet_times_never_end")
