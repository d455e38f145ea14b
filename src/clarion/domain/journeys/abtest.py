"""When an A/B push step has a winner.

A test ends at its ``ends_at`` (the variant with the better rate wins; a tie goes to A, the
control) or, with ``significance``, as soon as a two-proportion z-test says the better rate is
better with that confidence, after at least ``MIN_PEOPLE`` people per variant (a test decided on
a handful of people would crown noise). The rate is the metric (people who opened, or clicked)
over the people sent each variant. Pure: the runtime feeds it the figures and the time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from clarion.domain.journeys.document import AbTest
from clarion.domain.journeys.engine import Variant

MIN_PEOPLE = 100


@dataclass(frozen=True, slots=True)
class Arm:
    sent: int  # people sent this variant
    hits: int  # of them, people who opened (or clicked, per the test's metric)

    @property
    def rate(self) -> float:
        return self.hits / self.sent if self.sent else 0.0


def confidence(a: Arm, b: Arm) -> float:
    """How sure (0..1) a two-sided two-proportion z-test is that the rates differ."""
    if a.sent == 0 or b.sent == 0:
        return 0.0
    pooled = (a.hits + b.hits) / (a.sent + b.sent)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / a.sent + 1 / b.sent))
    if spread == 0:
        return 0.0
    z = abs(a.rate - b.rate) / spread
    return math.erf(z / math.sqrt(2))  # 1 - two-sided p-value


def winner(test: AbTest, a: Arm, b: Arm, now: datetime) -> Variant | None:
    """The winning variant, or None while the test runs."""
    better: Variant = "b" if b.rate > a.rate else "a"
    if test.ends_at is not None and now >= test.ends_at:
        return better
    if test.significance is not None and min(a.sent, b.sent) >= MIN_PEOPLE \
            and a.rate != b.rate and confidence(a, b) >= test.significance:
        return better
    return None
