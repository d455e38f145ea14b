"""The reading of a journey document's steps (``read_steps``): each step's fields by its
type, A/B tests included, with unique ids; ``reading`` reads the rest of the document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clarion.domain.journeys.document import (
    END,
    MAX_STEPS,
    STEP_TYPES,
    AbTest,
    Branch,
    BranchStep,
    EndStep,
    PushStep,
    Share,
    SplitStep,
    Step,
    WaitForInteractionStep,
    WaitStep,
)
from clarion.domain.journeys.durations import parse_datetime, parse_local_time
from clarion.domain.journeys.fields import FieldReader


def read_steps(r: FieldReader, value: object) -> list[Step] | None:
    """The steps that read without problems (each by its type, ids unique and never
    ``end``); None when ``steps`` is not a list of 1 to ``MAX_STEPS`` items."""
    if not isinstance(value, list) or not value:
        r.bad("steps", "must be a non-empty list of steps")
        return None
    if len(value) > MAX_STEPS:
        r.bad("steps", f"has {len(value)} steps; a journey has at most {MAX_STEPS}")
        return None
    out: list[Step] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        r.step = None
        doc = r.mapping(item, f"steps[{i}]")
        if doc is None:
            continue
        step_id = r.text(doc, "id", f"steps[{i}].id")
        if step_id is None:
            continue
        if step_id == END:
            r.bad(f"steps[{i}].id", "'end' is reserved: it is the target that ends the journey")
            continue
        if step_id in seen:
            r.bad(f"steps[{i}].id", f"{step_id!r} is used by an earlier step; ids are unique")
            continue
        seen.add(step_id)
        r.step = step_id
        step = _step(r, doc, step_id)
        if step is not None:
            out.append(step)
    r.step = None
    return out


def _step(r: FieldReader, doc: Mapping[str, Any], step_id: str) -> Step | None:
    kind = r.choice(doc, "type", "type", STEP_TYPES)
    base = {"id", "type"}
    if kind == "push":
        r.unknown(doc, base | {"message_id", "ab", "next", "send_before"}, "")
        nxt = r.text(doc, "next", "next", required=False)
        message_id = r.text(doc, "message_id", "message_id", required=False)
        ab = _ab(r, doc["ab"]) if "ab" in doc else None
        if (message_id is None) == ("ab" not in doc):
            r.bad("message_id", "give either message_id or an A/B test (ab)")
        send_before = r.wait_length(doc, "send_before", "send_before", required=False)
        return PushStep(step_id, message_id, ab, nxt, send_before)
    if kind == "wait":
        r.unknown(doc, base | {"duration", "until", "until_local_time", "next"}, "")
        nxt = r.text(doc, "next", "next", required=False)
        given = [k for k in ("duration", "until", "until_local_time") if k in doc]
        if len(given) != 1:
            r.bad("duration", "give exactly one of duration, until or until_local_time")
            return None
        duration = r.wait_length(doc, "duration", "duration", required=False)
        until = local = None
        if "until" in doc:
            try:
                until = parse_datetime(doc["until"])
            except ValueError as exc:
                r.bad("until", str(exc))
        if "until_local_time" in doc:
            try:
                local = parse_local_time(doc["until_local_time"])
            except ValueError as exc:
                r.bad("until_local_time", str(exc))
        return WaitStep(step_id, duration, until, local, nxt)
    if kind == "wait_for_interaction":
        r.unknown(doc, base | {"step", "interaction", "trigger", "when", "within", "yes", "no"},
                  "")
        within = r.wait_length(doc, "within", "within")
        yes = r.text(doc, "yes", "yes")
        no = r.text(doc, "no", "no")
        pushed = r.text(doc, "step", "step", required=False)
        trigger = r.text(doc, "trigger", "trigger", required=False)
        interaction = None
        when = None
        if (pushed is None) == (trigger is None):
            r.bad("step", "give either step (an earlier push step, with interaction) or trigger")
        if pushed is not None:
            interaction = r.choice(doc, "interaction", "interaction", ("opened", "clicked"))
        elif "interaction" in doc:
            r.bad("interaction", "only a wait for a push step's interaction has one")
        if trigger is not None:
            when = r.condition(doc, "when", "when")
        elif "when" in doc:
            r.bad("when", "only a wait for a trigger has a condition")
        if within is None or yes is None or no is None:
            return None
        return WaitForInteractionStep(step_id, within, yes, no, pushed,
                                      interaction, trigger, when)  # type: ignore[arg-type]
    if kind == "branch":
        r.unknown(doc, base | {"branches", "otherwise"}, "")
        otherwise = r.text(doc, "otherwise", "otherwise")
        raw = doc.get("branches")
        if not isinstance(raw, list) or not raw:
            r.bad("branches", "must be a non-empty list of {\"when\", \"next\"}")
            return None
        branches = []
        for at, b in r.items(raw, "branches", {"when", "next"}):
            when = r.condition(b, "when", f"{at}when", required=True)
            nxt = r.text(b, "next", f"{at}next")
            if when is not None and nxt is not None:
                branches.append(Branch(when, nxt))
        return None if otherwise is None else BranchStep(step_id, tuple(branches), otherwise)
    if kind == "split":
        r.unknown(doc, base | {"shares"}, "")
        raw = doc.get("shares")
        if not isinstance(raw, list) or len(raw) < 2:
            r.bad("shares", "must list at least two {\"share\", \"next\"}")
            return None
        shares = []
        for at, s in r.items(raw, "shares", {"share", "next"}):
            share = r.number(s, "share", f"{at}share", 0, 100)
            nxt = r.text(s, "next", f"{at}next")
            if share is not None and nxt is not None:
                shares.append(Share(share, nxt))
        if len(shares) == len(raw) and abs(sum(s.share for s in shares) - 100) > 1e-9:
            r.bad("shares", f"add up to {sum(s.share for s in shares):g} %, not 100 %")
        return SplitStep(step_id, tuple(shares))
    if kind == "end":
        r.unknown(doc, base, "")
        return EndStep(step_id)
    return None


def _ab(r: FieldReader, value: object) -> AbTest | None:
    doc = r.mapping(value, "ab")
    if doc is None:
        return None
    r.unknown(doc, {"a", "b", "share_a", "metric", "ends_at", "significance"}, "ab.")
    a = r.text(doc, "a", "ab.a")
    b = r.text(doc, "b", "ab.b")
    share_a = r.number(doc, "share_a", "ab.share_a", 10, 90)
    if share_a is not None and share_a != int(share_a):
        r.bad("ab.share_a", "must be a whole percentage from 10 to 90")
    metric = r.choice(doc, "metric", "ab.metric", ("opened", "clicked"), "opened")
    ends_at = None
    if "ends_at" in doc:
        try:
            ends_at = parse_datetime(doc["ends_at"])
        except ValueError as exc:
            r.bad("ab.ends_at", str(exc))
    significance = r.number(doc, "significance", "ab.significance", 0.5, 0.999, required=False)
    if ("ends_at" in doc) == (significance is not None) and "significance" not in doc:
        r.bad("ab.ends_at", "give either ends_at (a date-time) or significance (e.g. 0.95)")
    elif "ends_at" in doc and "significance" in doc:
        r.bad("ab.ends_at", "give either ends_at or significance, not both")
    if a is None or b is None or share_a is None or metric is None:
        return None
    return AbTest(a, b, int(share_a), metric, ends_at, significance)  # type: ignore[arg-type]
