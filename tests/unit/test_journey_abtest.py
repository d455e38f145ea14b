"""A/B winners: at the end date the better rate wins (ties to A); with a significance, only
once the difference is that certain and both variants reached enough people."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clarion.domain.journeys.abtest import MIN_PEOPLE, Arm, confidence, winner
from clarion.domain.journeys.document import AbTest

pytestmark = pytest.mark.unit

NOW = datetime(2027, 3, 1, tzinfo=UTC)


def test_ends_at_picks_the_better_rate_and_ties_go_to_a() -> None:
    test = AbTest("ma", "mb", 50, "opened", ends_at=NOW)
    assert winner(test, Arm(10, 1), Arm(10, 2), NOW - timedelta(seconds=1)) is None
    assert winner(test, Arm(10, 1), Arm(10, 2), NOW) == "b"
    assert winner(test, Arm(10, 3), Arm(10, 2), NOW) == "a"
    assert winner(test, Arm(10, 2), Arm(10, 2), NOW) == "a"
    assert winner(test, Arm(0, 0), Arm(0, 0), NOW) == "a"


def test_significance_waits_for_certainty_and_enough_people() -> None:
    test = AbTest("ma", "mb", 50, "clicked", significance=0.95)
    assert winner(test, Arm(50, 5), Arm(50, 25), NOW) is None  # too few people
    assert winner(test, Arm(1000, 100), Arm(1000, 108), NOW) is None  # not certain
    assert winner(test, Arm(1000, 100), Arm(1000, 160), NOW) == "b"
    assert winner(test, Arm(MIN_PEOPLE, 40), Arm(MIN_PEOPLE, 10), NOW) == "a"


def test_confidence_matches_the_z_test() -> None:
    # z = 1.96 is the 95 % two-sided point.
    assert confidence(Arm(1000, 100), Arm(1000, 160)) > 0.999
    assert confidence(Arm(1000, 100), Arm(1000, 100)) == 0
    assert 0.95 < confidence(Arm(2000, 200), Arm(2000, 239)) < 0.952


@given(st.integers(1, 10_000), st.integers(1, 10_000), st.data())
def test_confidence_is_a_probability_and_symmetric(n_a: int, n_b: int, data: st.DataObject
                                                   ) -> None:
    a = Arm(n_a, data.draw(st.integers(0, n_a)))
    b = Arm(n_b, data.draw(st.integers(0, n_b)))
    assert 0 <= confidence(a, b) <= 1
    assert confidence(a, b) == pytest.approx(confidence(b, a))
