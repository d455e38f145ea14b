"""docs/journeys.md matches the code: every journey document in it is valid, and the worked
example is the issue's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from clarion.api.schemas.journeys import EXAMPLE
from clarion.domain.journeys.validation import validate

pytestmark = pytest.mark.unit

DOC = Path(__file__).resolve().parents[2] / "docs" / "journeys.md"


def _blocks() -> list[object]:
    return [json.loads(b) for b in re.findall(r"```json\n(.*?)```", DOC.read_text(), re.S)]


def test_every_journey_in_the_docs_is_valid() -> None:
    journeys = [b for b in _blocks() if isinstance(b, dict) and "steps" in b]
    assert len(journeys) == 3
    assert journeys[0] == EXAMPLE  # the example, as the API reference shows it
    for journey in journeys:
        assert validate(journey) == [], journey["name"]


def test_the_documented_validation_answer_is_what_the_code_says() -> None:
    shown = next(b for b in _blocks() if isinstance(b, dict) and "errors" in b)
    example = next(b for b in _blocks() if isinstance(b, dict) and "steps" in b)
    first = json.loads(json.dumps(example))
    first["steps"][1]["within"] = "P1M"
    second = json.loads(json.dumps(example))
    second["steps"][3]["branches"][0]["next"] = "prks"
    problems = [p.as_dict() for p in validate(first) + validate(second)]
    assert [{"step": p["step"], "field": p["field"], "message": p["message"]}
            for p in problems] == shown["errors"]
