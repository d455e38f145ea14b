"""The journey wiring's pure parts: which conditions and triggers a document names, and how a
condition reads a person's values and the trigger's data."""

from __future__ import annotations

import pytest

from clarion.services.journey_versions import conditions_of, triggers_of
from clarion.services.journey_wiring import evaluate_plain

pytestmark = pytest.mark.unit

DOCUMENT = {
    "name": "Cart", "app_id": "a",
    "entry": {"type": "trigger", "trigger": "cart_abandoned", "when": "cart_total gt 50"},
    "exit_triggers": ["purchased", {"trigger": "unsubscribed", "when": "reason eq 'spam'"}],
    "goal": {"trigger": "checkout", "target_share": 15},
    "steps": [
        {"id": "w", "type": "wait_for_interaction", "trigger": "visited", "within": "P1D",
         "yes": "b", "no": "end"},
        {"id": "b", "type": "branch", "branches": [
            {"when": "in_segment('s-1')", "next": "end"}], "otherwise": "end"}]}


def test_every_condition_and_trigger_of_a_document_is_found() -> None:
    assert sorted(conditions_of(DOCUMENT)) == sorted(
        ["cart_total gt 50", "reason eq 'spam'", "in_segment('s-1')"])
    assert triggers_of(DOCUMENT) == {"cart_abandoned", "purchased", "unsubscribed", "checkout",
                                   "visited"}
    assert triggers_of({"entry": {"type": "segment", "segment_id": "s"}, "steps": []}) == set()


def test_conditions_read_fields_over_attributes_and_trigger_data_over_both() -> None:
    values = {"first_name": "Ann", "tier": "gold", "cart_total": 10}
    assert evaluate_plain("tier eq 'gold' and first_name eq 'Ann'", values, None)
    assert not evaluate_plain("cart_total gt 50", values, None)
    assert evaluate_plain("cart_total gt 50", values, {"cart_total": 72.5})
    assert not evaluate_plain("tier eq 5", values, None)  # typed: text is not a number
    assert evaluate_plain("city eq null", values, {})  # missing is null
