"""Frequency caps and the compliance screen: the order of the rules, frozen clocks, properties."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.domain.compliance.caps import WINDOWS, FrequencyCap, caps_from_document
from clarion.domain.compliance.quiet_times import Category, QuietRules, Window, is_quiet
from clarion.domain.compliance.screen import Decision, Reason, Screen, Verdict, decide
from clarion.errors import InvalidInput

pytestmark = pytest.mark.unit

NOON = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)  # 12:00 in Paris
PARIS = ZoneInfo("Europe/Paris")
NIGHT = QuietRules((Window(frozenset(range(7)), time(21, 0), time(8, 0)),))


def screen(**kw: object) -> Screen:
    base: dict[str, object] = {"category": Category.COMMERCIAL, "quiet": NIGHT, "zone": PARIS,
                               "cap": FrequencyCap(per_24h=1)}
    base.update(kw)
    return Screen(**base)  # type: ignore[arg-type]


def test_the_issue_document_sets_a_daily_cap() -> None:
    caps = caps_from_document({"push": {"per_24h": 1, "per_7d": None, "per_30d": None}})
    assert caps["push"] == FrequencyCap(per_24h=1)
    assert caps["push"].longest == timedelta(hours=24)
    assert FrequencyCap().longest is None


@pytest.mark.parametrize(("doc", "field"), [
    ({"sms": {}}, "sms"),
    ({"push": {"per_day": 1}}, "push"),
    ({"push": {"per_24h": 0}}, "push.per_24h"),
    ({"push": {"per_24h": True}}, "push.per_24h"),
    ({"push": {"per_7d": "3"}}, "push.per_7d"),
    ({"push": []}, "push"),
])
def test_bad_cap_documents_name_the_field(doc: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        caps_from_document(doc)
    assert caught.value.field == field


def test_rolling_windows_count_per_person() -> None:
    cap = FrequencyCap(per_24h=2, per_7d=3)
    day = timedelta(days=1)
    assert cap.full_window([NOON - timedelta(hours=1)], NOON) is None
    assert cap.full_window([NOON - timedelta(hours=1)] * 2, NOON) == "per_24h"
    # two yesterday-ish (outside 24 h) and one today: the week is full
    assert cap.full_window([NOON - 2 * day, NOON - 3 * day, NOON - timedelta(hours=2)],
                           NOON) == "per_7d"
    # exactly 24 h ago is outside the rolling window
    assert cap.full_window([NOON - day, NOON - day], NOON) is None


def test_order_expiry_then_consent_then_quiet_then_cap() -> None:
    past = NOON - timedelta(seconds=1)
    night = datetime(2026, 6, 10, 21, 0, tzinfo=UTC)  # 23:00 in Paris
    assert decide(screen(deadline=past, consent_required=True), NOON).reason is Reason.EXPIRED
    assert decide(screen(consent_required=True), night) == Decision(Verdict.BLOCK,
                                                                    Reason.NO_CONSENT)
    held = decide(screen(), night, [night - timedelta(hours=1)])
    assert held.verdict is Verdict.HOLD and held.reason is Reason.QUIET_TIME
    assert held.until == datetime(2026, 6, 11, 6, 0, tzinfo=UTC)  # 08:00 in Paris
    # at release, the cap is checked: the push that left an hour before the night blocks it
    at_release = decide(screen(), held.until, [night - timedelta(hours=1)])
    assert at_release == Decision(Verdict.BLOCK, Reason.FREQUENCY_CAP, window="per_24h")
    assert decide(screen(), NOON).verdict is Verdict.SEND


def test_a_hold_past_the_deadline_is_skipped_as_expired() -> None:
    night = datetime(2026, 6, 10, 21, 0, tzinfo=UTC)
    decision = decide(screen(deadline=night + timedelta(hours=2)), night)
    assert decision == Decision(Verdict.SKIP, Reason.EXPIRED)


def test_transactional_pushes_skip_consent_and_caps() -> None:
    s = screen(category=Category.TRANSACTIONAL, quiet=QuietRules(), consent_required=True)
    assert decide(s, NOON, [NOON - timedelta(minutes=5)] * 10).verdict is Verdict.SEND


def test_consent_given_or_not_required() -> None:
    assert decide(screen(consent_required=True, consented=True), NOON).verdict is Verdict.SEND
    assert decide(screen(consent_required=True, consented=False),
                  NOON).reason is Reason.NO_CONSENT
    assert decide(screen(), NOON).verdict is Verdict.SEND  # not required: silence is fine
    # an explicit opt-out is honoured even where consent is not required
    assert decide(screen(consented=False), NOON).reason is Reason.NO_CONSENT


def test_an_excluded_journey_is_not_capped() -> None:
    assert decide(screen(cap_excluded=True), NOON,
                  [NOON - timedelta(minutes=1)]).verdict is Verdict.SEND


CAPS = st.builds(FrequencyCap, st.none() | st.integers(1, 3), st.none() | st.integers(1, 5),
                 st.none() | st.integers(1, 8))
GAPS = st.lists(st.integers(1, 36 * 3600), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(CAPS, GAPS, st.sampled_from(["UTC", "America/New_York", "Asia/Kathmandu",
                                    "Australia/Lord_Howe"]))
def test_no_commercial_push_leaves_over_a_cap_or_in_quiet_time(
        cap: FrequencyCap, gaps: list[int], zone_name: str) -> None:
    """Pushes arrive at random times; held ones are retried at their release. Whatever
    leaves is outside quiet time and never more than the cap in any rolling window."""
    zone = ZoneInfo(zone_name)
    s = Screen(Category.COMMERCIAL, NIGHT, zone, cap)
    sent: list[datetime] = []
    at = datetime(2026, 3, 1, tzinfo=UTC)
    for gap in gaps:
        at += timedelta(seconds=gap)
        when = at
        decision = decide(s, when, sent)
        if decision.verdict is Verdict.HOLD:
            assert decision.until is not None and decision.until > when
            when = decision.until
            decision = decide(s, when, sent)
        if decision.verdict is Verdict.SEND:
            assert not is_quiet(NIGHT, zone, when)
            sent.append(when)
    for name, limit in cap.limits.items():
        span = WINDOWS[name]
        for t in sent:
            assert sum(1 for u in sent if t - span < u <= t) <= limit
