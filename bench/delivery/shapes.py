"""Audience shapes (issue 12): one send to many people with one device each, and a mix.

A shape is an audience of the world (``world.Group``): the first ``people`` of a group, sent
at once as one send with their ``user_ids`` (at most 100,000, the API's bound per send).
"1,000,000 × 1" is one send to a segment (``cohort eq 'single'``: the whole group, the
world's people carry their group as the attribute ``cohort``), the form a larger audience
takes; the segment is created before the clock starts, and the send is measured from its POST
to the last outcome written.

Every shape is a fresh copy of one world (SQLite: the var directory; PostgreSQL: a database
``TEMPLATE``), and is compared with aioapns loops sending the same number of notifications as
the 100,000 × 1 shape to the same sink, in the same run (plain asyncio, uvloop, and uvloop with
``jh2``, the Rust-backed fork of ``h2``, substituted for ``h2`` under aioapns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.delivery.clarion_runs import Shot
from bench.delivery.world import Group, World

MAX_PER_SEND = 100_000  # SendCreate.user_ids (MAX_USERS_PER_SEND)


@dataclass(frozen=True)
class Shape:
    key: str  # what --shapes takes
    title: str
    group: str  # "single", "mix" or "heavy" (the world's 1,000-device people)
    people: int
    segment: bool = False  # one send to a segment (the whole group), not user_ids


FULL = [Shape("10k", "10,000 × 1", "single", 10_000),
        Shape("100k", "100,000 × 1", "single", 100_000),
        Shape("1m", "1,000,000 × 1 (one segment send)", "single", 1_000_000, segment=True),
        Shape("mix", "100,000 mixed (30 % none, 50 % one, 20 % two or three)", "mix", 100_000),
        Shape("heavy", "100 × 1,000", "heavy", 100)]
QUICK = [Shape("10k", "1,000 × 1 (quick)", "single", 1_000),
         Shape("100k", "10,000 × 1 (quick)", "single", 10_000),
         Shape("1m", "100,000 × 1 (quick, one segment send)", "single", 100_000,
               segment=True),
         Shape("mix", "10,000 mixed (quick)", "mix", 10_000),
         Shape("heavy", "20 × 1,000 (quick)", "heavy", 20)]
KEYS = [s.key for s in FULL]
PG_DEFAULT = ["10k", "100k", "mix"]
HEAVY_DEVICES = 1_000


def pick(keys: list[str], quick: bool) -> list[Shape]:
    table = {s.key: s for s in (QUICK if quick else FULL)}
    return [table[k] for k in KEYS if k in keys]


def groups_for(shapes: list[Shape]) -> tuple[list[Group], int]:
    """The world's groups for these shapes (each as large as its largest shape) and how many
    1,000-device people it needs."""
    single = max((s.people for s in shapes if s.group == "single"), default=0)
    mix = max((s.people for s in shapes if s.group == "mix"), default=0)
    heavy = max((s.people for s in shapes if s.group == "heavy"), default=0)
    groups = []
    if single:
        groups.append(Group("single", single, 1))
    if mix:
        groups.append(Group("mix", mix, None))
    return groups, heavy


def shot(shape: Shape, world: World) -> Shot:
    if shape.group == "heavy":
        people = world.ios_people[:shape.people]
        expected = len(people) * world.devices_per_person
    else:
        people = world.groups[shape.group][:shape.people]
        expected = sum(world.group_devices[shape.group][:shape.people])
    if len(people) < shape.people:
        raise RuntimeError(f"the world has {len(people)} people for {shape.title}")
    parts = [people[i:i + MAX_PER_SEND] for i in range(0, len(people), MAX_PER_SEND)]
    if not shape.segment:
        return Shot(shape.title, parts, expected)
    if len(world.groups[shape.group]) != shape.people:
        raise RuntimeError(f"{shape.title}: a segment send needs the whole group")
    return Shot(shape.title, parts, expected, segment_filter=f"cohort eq '{shape.group}'")


# ------------------------------------------------------------------------------------ report


def _aioapns(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The aioapns loops of the shapes comparison, by variant."""
    out = {}
    for b in results.get("baselines", []):
        if b.get("kind") == "aioapns" and b.get("shapes") and "error" not in b:
            out[b["variant"]] = b
    return out


VARIANTS = [("asyncio", "aioapns (h2, asyncio)"), ("uvloop", "aioapns (h2, uvloop)"),
            ("jh2-uvloop", "aioapns (jh2, uvloop)")]
HEADERS = ["shape", "database", "people", "notifications", "POSTs", "Clarion sends/s",
           "sender CPU-s per 1,000", "peak RSS MB (Clarion)", "POST → first notification s",
           *(h for _, label in VARIANTS for h in (f"{label} sends/s", "ratio")), "outcomes"]


def _f(v: Any, digits: int = 0) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def shape_runs(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in results.get("clarion", []) if c.get("shape") and "error" not in c]


def rows(results: dict[str, Any]) -> list[list[str]]:
    base = _aioapns(results)
    out = []
    for c in shape_runs(results):
        s = c["sends"][0]
        cpu = c["cpu_s"]["clarion"]
        db = ("SQLite (serve)" if c["mode"] == "sqlite" else
              f"PostgreSQL, {c['workers']} worker{'s' if c['workers'] > 1 else ''}")
        peak = max((p["peak_rss_mb"] for p in c.get("processes", {}).values()), default=None)
        row = [c["shape_title"], db, _f(s["people"]), _f(c["deliveries"]), str(s["posts"]),
               _f(c["sends_per_s"]), _f(1000 * cpu / c["deliveries"] if c["deliveries"] else None,
                                        2),
               _f(peak), _f(s.get("first_request_s"), 2)]
        for variant, _ in VARIANTS:
            b = base.get(variant)
            rate = b["sends_per_s"] if b else None
            row += [_f(rate), f"{c['sends_per_s'] / rate:.2f}×" if rate else "–"]
        row.append(", ".join(f"{v:,} {k}" for k, v in sorted(s["counts"].items())))
        out.append(row)
    return out


def _by_key(results: dict[str, Any], key: str) -> dict[str, Any] | None:
    return next((c for c in shape_runs(results)
                 if c["shape"] == key and c["mode"] == "sqlite"), None)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 12's targets (embedded SQLite)."""
    out: list[dict[str, Any]] = []
    small, big, mid = (_by_key(results, k) for k in ("10k", "1m", "100k"))

    def peak(c: dict[str, Any]) -> float:
        return max(p["peak_rss_mb"] for p in c["processes"].values())

    if small and big:
        ratio = big["sends_per_s"] / small["sends_per_s"]
        out.append({"target": "rate at 1,000,000 × 1 within 15 % of the rate at 10,000 × 1",
                    "measured": f"{big['sends_per_s']:,.0f} vs {small['sends_per_s']:,.0f}/s "
                                f"({ratio - 1:+.1%})", "met": abs(ratio - 1) <= 0.15})
        growth = peak(big) - peak(small)
        out.append({"target": "peak RSS growth 10,000 → 1,000,000 × 1 < 100 MB",
                    "measured": f"{peak(small):,.0f} → {peak(big):,.0f} MB ({growth:+,.0f})",
                    "met": growth < 100})
    if mid:
        first = mid["sends"][0].get("first_request_s")
        out.append({"target": "POST → first notification at 100,000 × 1 < 1 s",
                    "measured": "–" if first is None else f"{first:.2f} s",
                    "met": first is not None and first < 1.0})
        base = _aioapns(results)
        for variant, label in VARIANTS:
            b = base.get(variant)
            if b is None:
                continue
            ratio = mid["sends_per_s"] / b["sends_per_s"]
            out.append({"target": f"100,000 × 1 ≥ 2× {label}" + (
                "" if variant == "asyncio" else " (stated, not the target)"),
                "measured": f"{ratio:.2f}× ({mid['sends_per_s']:,.0f} vs "
                            f"{b['sends_per_s']:,.0f}/s)", "met": ratio >= 2.0})
    return out


def markdown(results: dict[str, Any]) -> str:
    if not shape_runs(results):
        return ""
    lines = ["", "### Audience shapes (issue 12)", "",
             "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(results)]
    lines += ["", "| target (embedded SQLite) | measured | met? |", "|---|---|---|"]
    lines += [f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'NO'} |"
              for t in results.get("shape_targets", [])]
    base = _aioapns(results)
    if base:
        lines += ["", "aioapns loops (100 in flight, one connection, "
                  f"{next(iter(base.values()))['n']:,} notifications each, same sink): "
                  + "; ".join(f"{label} {base[v]['sends_per_s']:,.0f}/s, "
                              f"{base[v]['ok'] / base[v]['cpu_s']:,.0f} per CPU-s"
                              for v, label in VARIANTS if v in base and base[v].get("cpu_s"))]
    lines += ["", "Seconds after the first POST, and CPU seconds of the run:", "",
              "| shape | database | last 202 | first notification | last notification "
              "| last outcome written | CPU-s Clarion (per process) | CPU-s PostgreSQL "
              "| CPU-s nginx |", "|---|---|---|---|---|---|---|---|---|"]
    for c in shape_runs(results):
        s = c["sends"][0]
        per = " / ".join(f"{k} {v['cpu_s']}" for k, v in c.get("processes", {}).items())
        db = "SQLite" if c["mode"] == "sqlite" else f"PostgreSQL {c['workers']}w"
        lines.append(f"| {c['shape_title']} | {db} | {_f(s.get('post_answer_s'), 2)} | "
                     f"{_f(s.get('first_request_s'), 2)} | {_f(s.get('last_request_s'), 2)} | "
                     f"{_f(s.get('post_to_last_row_s'), 2)} | {c['cpu_s']['clarion']} ({per}) | "
                     f"{c['cpu_s']['postgres']} | {c['cpu_s']['nginx']} |")
    return "\n".join(lines) + "\n"
