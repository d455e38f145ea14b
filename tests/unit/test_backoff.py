"""Full-jitter backoff and Retry-After: pure functions, pinned random source."""

from __future__ import annotations

import math
import random

import pytest

from clarion.domain.backoff import backoff_seconds, honour_retry_after

pytestmark = pytest.mark.unit


def test_window_doubles_per_attempt_from_base() -> None:
    # A random source that always draws the top of the window exposes the window itself.
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    top = Top()
    assert [backoff_seconds(n, base=2.0, cap=1000.0, rng=top) for n in (1, 2, 3, 4)] == [
        2.0, 4.0, 8.0, 16.0,
    ]


def test_capped_and_never_overflows() -> None:
    rng = random.Random(7)
    for attempt in (20, 100, 10_000):
        delay = backoff_seconds(attempt, base=1.0, cap=30.0, rng=rng)
        assert 0.0 <= delay <= 30.0
        assert math.isfinite(delay)


def test_draws_are_spread_over_the_whole_window() -> None:
    rng = random.Random(42)
    draws = [backoff_seconds(5, base=1.0, cap=3600.0, rng=rng) for _ in range(2000)]
    assert all(0.0 <= d <= 16.0 for d in draws)
    # Full jitter: roughly uniform over [0, 16], not clustered at the top like "equal jitter".
    assert min(draws) < 1.0
    assert max(draws) > 15.0
    assert 7.0 < sum(draws) / len(draws) < 9.0


def test_seeded_rng_is_deterministic() -> None:
    assert backoff_seconds(3, rng=random.Random(1)) == backoff_seconds(3, rng=random.Random(1))


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempt_starts_at_one(attempt: int) -> None:
    with pytest.raises(ValueError, match="attempt"):
        backoff_seconds(attempt)


def test_retry_after_is_a_floor() -> None:
    assert honour_retry_after(5.0, 30.0) == 30.0
    assert honour_retry_after(60.0, 30.0) == 60.0
    assert honour_retry_after(5.0, None) == 5.0
    assert honour_retry_after(5.0, -1.0) == 5.0
    assert honour_retry_after(5.0, math.nan) == 5.0
