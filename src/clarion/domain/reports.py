"""Report figures: what each number means, computed from roll-up metric sums. Pure.

The write paths count facts into ``report_counters`` under metric names (see
``clarion.store.counters``); this module turns sums of those metrics into the figures and rates
people read (defined for people in ``docs/reports.md``) and buckets them into hourly or daily
series (zero-filled). Nothing here touches a database.

Ranges and buckets are ``clarion.domain.report_range``. Metric vocabulary read here:

=============================  ========  ====================================================
metric                         level     counted when
=============================  ========  ====================================================
``inflow``                     people    a person enters a send (fan-out)
``not_sent:no_valid_device``   people    that person had no active device for the app
``blocked:<reason>``           people    a compliance rule kept the push from them
                                         (frequency_cap, no_consent, expired)
``held:<reason>``              people    the push waited for the end of their quiet time
``deliveries``                 devices   a device is targeted (one delivery row)
``sent``                       devices   the provider accepted the notification
``sent_people``                people    the first device of a person accepted it (per send)
``not_sent:<state>``           devices   the delivery ended invalid_token, mismatch, rejected,
                                         credential_error or expired
``<kind>``                     events    every delivered / opened / clicked / dismissed report
``unique_<kind>_devices``      devices   the first report of a kind per delivery
``unique_<kind>_people``       people    the first report of a kind per (send, person)
``unique_engaged_people``      people    the first open or click per (send, person)
=============================  ========  ====================================================

Uniques are unique within a send: summed over several sends, a person who opened two sends
counts twice. That is the definition, not an approximation (CIJ reports per message, too).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from clarion.domain.report_range import Granularity, HourRange, hour_start
from clarion.errors import InvalidInput

Scope = Literal["org", "app", "send", "journey", "journey_step", "message"]
SCOPES: tuple[str, ...] = get_args(Scope)

KINDS = ("delivered", "opened", "clicked", "dismissed")
PERSON_NOT_SENT = ("no_valid_device",)
DEVICE_NOT_SENT = ("invalid_token", "mismatch", "rejected", "credential_error", "expired")
BLOCKED = ("frequency_cap", "no_consent", "expired")
HELD = ("quiet_time",)
NO_PLATFORM = "none"  # the split's key for person-level facts (platform "" in the roll-ups)

RATE_NAMES = ("send_rate", "delivery_rate", "open_rate", "click_through_rate",
              "click_to_open_rate", "engagement_rate")
# The interactions each rate's numerator counts. Apps report them (Clarion cannot see a
# notification arrive or be opened; clicks come from the apps or from tracked links): when
# not one of them was reported in the range, the rate is unknown, not 0 %.
RATE_INPUTS: dict[str, tuple[str, ...]] = {
    "delivery_rate": ("delivered",), "open_rate": ("opened",),
    "click_through_rate": ("clicked",), "click_to_open_rate": ("clicked",),
    "engagement_rate": ("opened", "clicked")}


# ------------------------------------------------------------------------------ scopes


def journey_step_key(journey_id: str, step_id: str) -> str:
    """The roll-up key of a journey step: step ids are only unique within their journey."""
    return f"{journey_id}/{step_id}"


def rollup_scopes(*, app_id: str, journey_id: str | None, journey_step_id: str | None,
                  message_id: str | None) -> list[tuple[str, str]]:
    """Every (scope, scope_id) a fact with these keys is summed under in ``report_rollups``."""
    out = [("org", ""), ("app", app_id)]
    if journey_id:
        out.append(("journey", journey_id))
        if journey_step_id:
            out.append(("journey_step", journey_step_key(journey_id, journey_step_id)))
    if message_id:
        out.append(("message", message_id))
    return out


def check_scope(scope: str, scope_id: str | None) -> None:
    if scope not in SCOPES:
        raise InvalidInput(f"scope {scope!r} is not one of {', '.join(SCOPES)}", field="scope",
                           fix="Use scope=org (the whole organization), or app, send, journey, "
                               "journey_step or message with id=<its id>.")
    if scope == "org" and scope_id:
        raise InvalidInput("an org report takes no id", field="id",
                           fix="Leave id out, or choose scope=app/send/... for one item.")
    if scope != "org" and not scope_id:
        raise InvalidInput(f"a {scope} report needs the {scope}'s id", field="id",
                           fix=f"Pass id=<{scope} id>"
                               + (" as <journey id>/<step id>." if scope == "journey_step"
                                  else "."))
    if scope == "journey_step" and scope_id and "/" not in scope_id:
        raise InvalidInput("a journey step is named <journey id>/<step id>", field="id",
                           fix="Pass id=<journey id>/<step id>.")


# ----------------------------------------------------------------------------- figures


def ratio(numerator: int, denominator: int) -> float | None:
    """``numerator / denominator``, or None (shown as null / "–") when nothing to divide by."""
    return None if denominator <= 0 else numerator / denominator


@dataclass(frozen=True, slots=True)
class Interaction:
    events: int  # every report of the kind
    unique_devices: int  # deliveries with at least one
    unique_people: int  # (send, person) pairs with at least one


@dataclass(frozen=True, slots=True)
class Reasons:
    by_reason: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())


@dataclass(frozen=True, slots=True)
class Rates:
    send_rate: float | None  # sent people / inflow
    delivery_rate: float | None  # unique delivered devices / sent devices
    open_rate: float | None  # unique opened people / sent people
    click_through_rate: float | None  # unique clicked people / sent people
    click_to_open_rate: float | None  # unique clicked people / unique opened people
    engagement_rate: float | None  # unique people who opened or clicked / sent people

    def as_dict(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in RATE_NAMES}


@dataclass(frozen=True, slots=True)
class Figures:
    inflow: int
    sent_people: int
    sent_devices: int
    targeted_devices: int
    not_sent_people: Reasons
    not_sent_devices: Reasons
    blocked: Reasons
    held: Reasons
    delivered: Interaction
    opened: Interaction
    clicked: Interaction
    dismissed: Interaction
    engaged_people: int

    def _ratios(self) -> Rates:
        return Rates(
            send_rate=ratio(self.sent_people, self.inflow),
            delivery_rate=ratio(self.delivered.unique_devices, self.sent_devices),
            open_rate=ratio(self.opened.unique_people, self.sent_people),
            click_through_rate=ratio(self.clicked.unique_people, self.sent_people),
            click_to_open_rate=ratio(self.clicked.unique_people, self.opened.unique_people),
            engagement_rate=ratio(self.engaged_people, self.sent_people),
        )

    @property
    def rates(self) -> Rates:
        """The rates; None where there is nothing to divide by, or where the rate's inputs
        were not reported (``not_reported``)."""
        hidden = set(self.not_reported)
        values = self._ratios().as_dict()
        return Rates(**{name: None if name in hidden else v for name, v in values.items()})

    @property
    def not_reported(self) -> list[str]:
        """Rates with something to divide by whose inputs no app reported in the range (no
        report of those kinds at all): unknown, shown as "not reported", never as 0 %."""
        events = dict(self._interactions())
        ratios = self._ratios().as_dict()
        return [name for name, kinds in RATE_INPUTS.items()
                if ratios[name] is not None and not any(events[k].events for k in kinds)]

    def as_dict(self, *, rates: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "inflow": self.inflow,
            "sent": {"people": self.sent_people, "devices": self.sent_devices},
            "targeted_devices": self.targeted_devices,
            "not_sent": {
                "people": {"total": self.not_sent_people.total,
                           "by_reason": dict(self.not_sent_people.by_reason)},
                "devices": {"total": self.not_sent_devices.total,
                            "by_reason": dict(self.not_sent_devices.by_reason)},
            },
            "blocked": {"total": self.blocked.total, "by_reason": dict(self.blocked.by_reason)},
            "held": {"total": self.held.total, "by_reason": dict(self.held.by_reason)},
            **{kind: {"events": i.events, "unique_devices": i.unique_devices,
                      "unique_people": i.unique_people}
               for kind, i in self._interactions()},
            "engaged_people": self.engaged_people,
        }
        if rates:
            out["rates"] = self.rates.as_dict()
            out["rates_not_reported"] = self.not_reported
        return out

    def columns(self) -> list[tuple[str, int]]:
        """Flat (column, value) pairs, in the order CSV exports and tables show them."""
        cols = [("inflow", self.inflow), ("sent_people", self.sent_people),
                ("sent_devices", self.sent_devices), ("targeted_devices", self.targeted_devices),
                ("not_sent_people", self.not_sent_people.total)]
        cols += [(f"not_sent_people:{r}", n) for r, n in self.not_sent_people.by_reason.items()]
        cols.append(("not_sent_devices", self.not_sent_devices.total))
        cols += [(f"not_sent_devices:{r}", n) for r, n in self.not_sent_devices.by_reason.items()]
        cols.append(("blocked", self.blocked.total))
        cols += [(f"blocked:{r}", n) for r, n in self.blocked.by_reason.items()]
        cols.append(("held", self.held.total))
        cols += [(f"held:{r}", n) for r, n in self.held.by_reason.items()]
        for kind, i in self._interactions():
            cols += [(f"{kind}_events", i.events), (f"{kind}_devices", i.unique_devices),
                     (f"{kind}_people", i.unique_people)]
        cols.append(("engaged_people", self.engaged_people))
        return cols

    def _interactions(self) -> list[tuple[str, Interaction]]:
        return [("delivered", self.delivered), ("opened", self.opened),
                ("clicked", self.clicked), ("dismissed", self.dismissed)]


def _with_known(found: dict[str, int], known: Iterable[str]) -> Reasons:
    """Known reasons zero-filled in their order, then any other reason found, sorted."""
    out = {r: found.pop(r, 0) for r in known}
    out.update(sorted(found.items()))
    return Reasons(out)


def figures(sums: Mapping[str, int]) -> Figures:
    """The figures of one set of metric sums (absent metrics are zero)."""
    if not sums:
        return ZERO
    g = sums.get
    person: dict[str, int] = {}
    device: dict[str, int] = {}
    blocked: dict[str, int] = {}
    held: dict[str, int] = {}
    for metric, value in sums.items():  # one pass: the reasons are open-ended
        if metric.startswith("not_sent:"):
            reason = metric[9:]
            (person if reason in PERSON_NOT_SENT else device)[reason] = value
        elif metric.startswith("blocked:"):
            blocked[metric[8:]] = value
        elif metric.startswith("held:"):
            held[metric[5:]] = value

    def interaction(kind: str) -> Interaction:
        return Interaction(g(kind, 0), g(f"unique_{kind}_devices", 0),
                           g(f"unique_{kind}_people", 0))

    return Figures(
        inflow=g("inflow", 0), sent_people=g("sent_people", 0), sent_devices=g("sent", 0),
        targeted_devices=g("deliveries", 0),
        not_sent_people=_with_known(person, PERSON_NOT_SENT),
        not_sent_devices=_with_known(device, DEVICE_NOT_SENT),
        blocked=_with_known(blocked, BLOCKED), held=_with_known(held, HELD),
        delivered=interaction("delivered"), opened=interaction("opened"),
        clicked=interaction("clicked"), dismissed=interaction("dismissed"),
        engaged_people=g("unique_engaged_people", 0),
    )


_NONE = Interaction(0, 0, 0)
ZERO = Figures(  # shared by every empty bucket: most cells of an hourly series are empty
    inflow=0, sent_people=0, sent_devices=0, targeted_devices=0,
    not_sent_people=_with_known({}, PERSON_NOT_SENT),
    not_sent_devices=_with_known({}, DEVICE_NOT_SENT), blocked=_with_known({}, BLOCKED),
    held=_with_known({}, HELD),
    delivered=_NONE, opened=_NONE, clicked=_NONE, dismissed=_NONE, engaged_people=0)


# ------------------------------------------------------------------------------ report


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    figures: Figures
    platforms: Mapping[str, Figures] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Report:
    org_id: str
    scope: Scope
    scope_id: str | None
    since: datetime  # the range actually covered (whole buckets)
    until: datetime
    granularity: Granularity
    by_platform: bool
    totals: Figures
    platforms: Mapping[str, Figures]  # empty unless by_platform
    series: list[Bucket]

    def as_dict(self) -> dict[str, Any]:
        return {
            "org_id": self.org_id, "scope": self.scope, "scope_id": self.scope_id,
            "since": self.since.isoformat(), "until": self.until.isoformat(),
            "granularity": self.granularity, "by_platform": self.by_platform,
            "totals": self.totals.as_dict(),
            "platforms": {p: _platform_dict(p, f) for p, f in self.platforms.items()},
            "series": [{"start": b.start.isoformat(), **b.figures.as_dict(rates=False),
                        **({"platforms": {p: f.as_dict(rates=False)
                                          for p, f in b.platforms.items()}}
                           if self.by_platform else {})}
                       for b in self.series],
        }


def _platform_dict(platform: str, f: Figures) -> dict[str, Any]:
    """The split's person-level entry has no rates: its people were sent on other platforms."""
    if platform != NO_PLATFORM:
        return f.as_dict()
    return {**f.as_dict(rates=False), "rates": dict.fromkeys(RATE_NAMES),
            "rates_not_reported": []}


MetricRow = tuple[int, str | None, str, int]  # (bucket start hour, platform or None, metric, n)


def assemble(*, org_id: str, scope: Scope, scope_id: str | None, hours: HourRange,
             by_platform: bool, rows: Iterable[MetricRow]) -> Report:
    """A report from summed roll-up rows, with every bucket of the range present (zero-filled).

    ``rows`` carry the bucket's first hour; platform is None when not split by platform, else
    the roll-up's platform ("" for person-level facts, shown as ``none``)."""
    total: dict[str, int] = defaultdict(int)
    per_bucket: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_platform: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_cell: dict[tuple[int, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for bucket, platform, metric, value in rows:
        if not hours.start <= bucket < hours.end:
            continue
        total[metric] += value
        per_bucket[bucket][metric] += value
        if by_platform:
            p = platform or NO_PLATFORM
            per_platform[p][metric] += value
            per_cell[(bucket, p)][metric] += value
    platforms = sorted(per_platform, key=_platform_order)
    series = [Bucket(hour_start(b), figures(per_bucket.get(b, {})),
                     {p: figures(per_cell.get((b, p), {})) for p in platforms})
              for b in hours.buckets()]
    return Report(
        org_id=org_id, scope=scope, scope_id=scope_id, since=hours.since, until=hours.until,
        granularity=hours.granularity, by_platform=by_platform, totals=figures(total),
        platforms={p: figures(per_platform[p]) for p in platforms}, series=series)


def _platform_order(p: str) -> tuple[int, str]:
    order = {"ios": 0, "android": 1, "web": 2, NO_PLATFORM: 9}
    return (order.get(p, 5), p)
