"""The rules a journey's graph must keep, checked after the structural reading.

* every target (``next``, ``yes``/``no``, a branch's or share's ``next``, ``otherwise``) names
  a step of the journey or ``end``;
* every step can be reached from the first one;
* a loop has a ``wait`` or ``wait_for_interaction`` in it (otherwise a person would spin in
  it forever, sending at machine speed);
* a ``wait_for_interaction`` on a push step names a push step that every person reaching the
  wait has passed (it dominates the wait): waiting for the open of a message a person may never
  have been sent would always answer ``no``.

``validate`` returns every problem (structural and graph); ``parse`` returns the journey or
raises ``JourneyInvalid`` carrying them all.
"""

from __future__ import annotations

from collections.abc import Iterator

from clarion.domain.journeys.document import (
    END,
    BranchStep,
    ConditionParser,
    Journey,
    Problem,
    PushStep,
    SplitStep,
    Step,
    WaitForInteractionStep,
    WaitStep,
    any_condition,
    targets,
)
from clarion.domain.journeys.reading import read
from clarion.errors import InvalidInput


class JourneyInvalid(InvalidInput):
    """A journey document with problems; ``problems`` lists them all."""

    code = "journey_invalid"

    def __init__(self, problems: list[Problem]) -> None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"the journey document is not valid: {first}{more}",
                         field=first.field,
                         fix="Fix every problem listed in 'errors' (each names the step id "
                         "and the field), or check the document first with POST "
                         ".../journeys/validate.")
        self.problems = problems

    def as_dict(self) -> dict[str, object]:  # type: ignore[override]
        out: dict[str, object] = dict(super().as_dict())
        # ``problems`` is text, as in every error body; ``errors`` the same as the validate
        # endpoint answers (step, field, message).
        out["problems"] = [str(p) for p in self.problems]
        out["errors"] = [p.as_dict() for p in self.problems]
        return out


def _target_fields(journey: Journey, step: Step) -> Iterator[tuple[str, str]]:
    match step:
        case PushStep() | WaitStep():
            yield "next", step.next or journey.following(step.id)
        case WaitForInteractionStep():
            yield "yes", step.yes
            yield "no", step.no
        case BranchStep():
            for i, b in enumerate(step.branches):
                yield f"branches[{i}].next", b.next
            yield "otherwise", step.otherwise
        case SplitStep():
            for i, s in enumerate(step.shares):
                yield f"shares[{i}].next", s.next
        case _:
            return


def _reachable(journey: Journey, start: str, *, without: str | None = None) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        node = todo.pop()
        if node in (END, without) or node in seen:
            continue
        seen.add(node)
        todo.extend(t for t in targets(journey, journey.get(node)) if t != END)
    return seen


def _loops(journey: Journey) -> list[list[str]]:
    """Strongly connected components that are loops (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in (s.id for s in journey.steps):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = []
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work.append((root, iter([t for t in targets(journey, journey.get(root)) if t != END])))
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter([t for t in targets(journey, journey.get(child))
                                              if t != END])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                self_loop = node in targets(journey, journey.get(node))
                if len(component) > 1 or self_loop:
                    out.append(sorted(component, key=journey.position))
    return out


def graph_problems(journey: Journey) -> list[Problem]:
    problems: list[Problem] = []
    ids = {s.id for s in journey.steps}
    for step in journey.steps:
        for fld, target in _target_fields(journey, step):
            if target != END and target not in ids:
                problems.append(Problem(fld, f"names step {target!r}, which does not exist "
                                        f"(steps: {', '.join(sorted(ids))}, or 'end')", step.id))
    if problems:
        return problems  # the other checks walk the graph: they need every target to exist
    reachable = _reachable(journey, journey.first)
    for step in journey.steps:
        if step.id not in reachable:
            problems.append(Problem("id", "cannot be reached from the first step: no step "
                                    "leads to it (name it in a 'next', or remove it)", step.id))
    for loop in _loops(journey):
        if not any(isinstance(journey.get(s), WaitStep | WaitForInteractionStep) for s in loop):
            problems.append(Problem("next", f"steps {' -> '.join(loop)} form a loop without a "
                                    "wait: add a wait step to it", loop[0]))
    for step in journey.steps:
        if not isinstance(step, WaitForInteractionStep) or step.step is None:
            continue
        if step.step not in ids:
            problems.append(Problem("step", f"names step {step.step!r}, which does not exist",
                                    step.id))
        elif not isinstance(journey.get(step.step), PushStep):
            problems.append(Problem("step", f"{step.step!r} is not a push step: a wait for "
                                    "an interaction waits on an earlier push step", step.id))
        elif step.step == step.id or step.id in _reachable(journey, journey.first,
                                                           without=step.step):
            problems.append(Problem("step", f"push step {step.step!r} does not come before "
                                    "this step on every path: a person could wait for the "
                                    "open of a message never sent to them", step.id))
    return problems


def validate(document: object, parse_condition: ConditionParser = any_condition
             ) -> list[Problem]:
    """Every problem of the document (empty when it is valid)."""
    journey, problems = read(document, parse_condition, graph_problems)
    if journey is None:
        return problems
    return graph_problems(journey)


def parse(document: object, parse_condition: ConditionParser = any_condition) -> Journey:
    """The journey, or ``JourneyInvalid`` with every problem."""
    journey, problems = read(document, parse_condition, graph_problems)
    if journey is not None:
        problems = graph_problems(journey)
    if problems or journey is None:
        raise JourneyInvalid(problems)
    return journey
