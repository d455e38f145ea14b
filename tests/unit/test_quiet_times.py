"""Quiet times on the person's wall clock: windows, overnight, dates, rules, DST, odd offsets."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.domain.compliance.quiet_times import (
    Category,
    QuietRules,
    Window,
    is_quiet,
    profile_from_document,
    quiet_until,
    wall_to_utc,
    zone_for,
)
from clarion.errors import InvalidInput

pytestmark = pytest.mark.unit

EVERY_DAY = frozenset(range(7))
NIGHT = QuietRules((Window(EVERY_DAY, time(21, 0), time(8, 0)),))
NY, BERLIN, LORD_HOWE = ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin"), ZoneInfo(
    "Australia/Lord_Howe")
KATHMANDU, CHATHAM = ZoneInfo("Asia/Kathmandu"), ZoneInfo("Pacific/Chatham")


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone).astimezone(UTC)  # type: ignore[misc]


def test_daytime_is_not_quiet_and_night_is_held_until_the_morning() -> None:
    assert quiet_until(NIGHT, BERLIN, local(BERLIN, 2026, 3, 10, 12, 0)) is None
    held = quiet_until(NIGHT, BERLIN, local(BERLIN, 2026, 3, 10, 22, 30))
    assert held == local(BERLIN, 2026, 3, 11, 8, 0)
    # after midnight, the same night: released the same morning
    assert quiet_until(NIGHT, BERLIN, local(BERLIN, 2026, 3, 11, 3, 0)) == local(
        BERLIN, 2026, 3, 11, 8, 0)


def test_window_edges_start_is_quiet_end_is_not() -> None:
    assert is_quiet(NIGHT, BERLIN, local(BERLIN, 2026, 3, 10, 21, 0))
    assert not is_quiet(NIGHT, BERLIN, local(BERLIN, 2026, 3, 10, 20, 59))
    assert not is_quiet(NIGHT, BERLIN, local(BERLIN, 2026, 3, 11, 8, 0))


def test_overnight_days_name_the_evening_it_starts() -> None:
    friday_night = QuietRules((Window(frozenset({4}), time(21, 0), time(8, 0)),))
    assert is_quiet(friday_night, UTC, datetime(2026, 3, 13, 23, 0, tzinfo=UTC))  # Fri
    assert is_quiet(friday_night, UTC, datetime(2026, 3, 14, 7, 0, tzinfo=UTC))  # Sat morning
    assert not is_quiet(friday_night, UTC, datetime(2026, 3, 12, 23, 0, tzinfo=UTC))  # Thu
    assert not is_quiet(friday_night, UTC, datetime(2026, 3, 13, 7, 0, tzinfo=UTC))  # Fri morning


def test_quiet_dates_chain_with_the_night_windows() -> None:
    rules = QuietRules(NIGHT.windows, frozenset({date(2026, 12, 25)}))
    # Christmas Eve 22:00 → night until 25th 08:00 → the whole 25th → night 25th 21:00 to 26th 08:00
    assert quiet_until(rules, BERLIN, local(BERLIN, 2026, 12, 24, 22, 0)) == local(
        BERLIN, 2026, 12, 26, 8, 0)


@pytest.mark.parametrize(("zone", "evening", "release"), [
    # New York springs forward on 8 March 2026 (02:00 → 03:00): the night is an hour shorter
    (NY, (2026, 3, 7, 22, 0), datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),  # 08:00 EDT = 12:00Z
    (NY, (2026, 11, 1, 0, 30), datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),  # falls back: 08:00 EST
    # Berlin springs forward on 29 March 2026 and falls back on 25 October 2026
    (BERLIN, (2026, 3, 28, 23, 0), datetime(2026, 3, 29, 6, 0, tzinfo=UTC)),  # 08:00 CEST
    (BERLIN, (2026, 10, 24, 23, 0), datetime(2026, 10, 25, 7, 0, tzinfo=UTC)),  # 08:00 CET
    # Lord Howe's DST moves the clock by 30 minutes (+10:30 ↔ +11:00); ends 5 April 2026
    (LORD_HOWE, (2026, 4, 4, 22, 0), datetime(2026, 4, 4, 21, 30, tzinfo=UTC)),  # 08:00 at +10:30
])
def test_release_at_the_morning_wall_clock_across_dst(
        zone: ZoneInfo, evening: tuple[int, ...], release: datetime) -> None:
    held = quiet_until(NIGHT, zone, local(zone, *evening))
    assert held == release
    assert held.astimezone(zone).time() == time(8, 0)


def test_an_end_the_spring_forward_skips_releases_when_the_clock_passes_it() -> None:
    # quiet until 02:30, but on 8 March 2026 New York's clock goes 01:59:59 EST → 03:00 EDT
    rules = QuietRules((Window(EVERY_DAY, time(1, 0), time(2, 30)),))
    held = quiet_until(rules, NY, local(NY, 2026, 3, 8, 1, 15))
    assert held == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # the jump: 02:00 EST = 03:00 EDT
    assert not is_quiet(rules, NY, held)
    assert is_quiet(rules, NY, held - timedelta(seconds=1))


def test_an_end_the_fall_back_repeats_releases_at_the_first() -> None:
    # 1 November 2026, New York shows 01:00–01:59 twice; quiet until 01:30 ends at the first
    rules = QuietRules((Window(EVERY_DAY, time(0, 0), time(1, 30)),))
    held = quiet_until(rules, NY, local(NY, 2026, 11, 1, 0, 10))
    assert held == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT


@pytest.mark.parametrize("zone", [KATHMANDU, CHATHAM, ZoneInfo("Asia/Kolkata")])
def test_odd_offsets_use_the_local_wall_clock(zone: ZoneInfo) -> None:
    held = quiet_until(NIGHT, zone, local(zone, 2026, 6, 1, 23, 40))
    assert held is not None
    assert held.astimezone(zone).replace(tzinfo=None) == datetime(2026, 6, 2, 8, 0)


def test_zone_falls_back_person_then_journey_then_org_then_utc() -> None:
    assert zone_for("Europe/Paris", "Asia/Tokyo", "UTC").key == "Europe/Paris"
    assert zone_for(None, "Asia/Tokyo", "UTC").key == "Asia/Tokyo"
    assert zone_for("", None, "America/Chicago").key == "America/Chicago"
    assert zone_for("Not/AZone", None, None).key == "UTC"


DOC = {
    "name": "Default",
    "general": {
        "commercial": {"windows": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                                    "start": "21:00", "end": "08:00"}],
                       "dates": ["2026-12-25"]},
        "transactional": {"windows": []},
    },
    "advanced": [
        {"name": "France", "when": {"country": ["FR"]},
         "rules": {"commercial": {"windows": [{"days": ["sun"], "start": "00:00",
                                               "end": "23:59"}]}}},
        {"name": "US phones", "when": {"phone": ["+1*"]},
         "rules": {"commercial": {"windows": [{"start": "20:00", "end": "09:00"}]}}},
    ],
}


def test_profile_document_first_matching_rule_wins_per_category() -> None:
    profile = profile_from_document(DOC)
    assert profile.rules_for({"country": "fr", "phone": "+14155550100"},
                             Category.COMMERCIAL).windows[0].days == frozenset({6})
    us = profile.rules_for({"country": "US", "phone": "+14155550100"}, Category.COMMERCIAL)
    assert us.windows[0].start == time(20, 0)
    general = profile.rules_for({"country": "DE"}, Category.COMMERCIAL)
    assert date(2026, 12, 25) in general.dates
    assert profile.rules_for({"country": "DE"}, Category.TRANSACTIONAL).empty
    # a matching advanced rule without transactional rules means no quiet time for them
    assert profile.rules_for({"country": "FR"}, Category.TRANSACTIONAL).empty


@pytest.mark.parametrize(("doc", "field"), [
    ({"name": ""}, "name"),
    ({"name": "x", "general": {"commercial": {"windows": [{"start": "25:00", "end": "08:00"}]}}},
     "general.commercial.windows[0].start"),
    ({"name": "x", "general": {"commercial": {"windows": [{"days": ["someday"], "start": "21:00",
                                                          "end": "08:00"}]}}},
     "general.commercial.windows[0].days"),
    ({"name": "x", "general": {"commercial": {"dates": ["25/12/2026"]}}},
     "general.commercial.dates[0]"),
    ({"name": "x", "general": {"marketing": {}}}, "general"),
    ({"name": "x", "advanced": [{"when": {}, "rules": {}}]}, "advanced[0].when"),
])
def test_bad_documents_name_the_field(doc: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        profile_from_document(doc)
    assert caught.value.field == field


def test_windows_covering_the_whole_week_are_refused() -> None:
    with pytest.raises(InvalidInput, match="whole week"):
        profile_from_document({"name": "x", "general": {"commercial": {"windows": [
            {"start": "08:00", "end": "08:00"}]}}})


def test_wall_to_utc_on_plain_and_repeated_times() -> None:
    assert wall_to_utc(BERLIN, date(2026, 7, 1), time(9, 0)) == datetime(
        2026, 7, 1, 7, 0, tzinfo=UTC)
    # 02:30 on 25 October 2026 happens twice in Berlin: the first (CEST) is taken
    assert wall_to_utc(BERLIN, date(2026, 10, 25), time(2, 30)) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC)


ZONES = st.sampled_from([NY, BERLIN, LORD_HOWE, KATHMANDU, CHATHAM, ZoneInfo("UTC"),
                         ZoneInfo("America/St_Johns"), ZoneInfo("Australia/Adelaide")])
CLOCK = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
WINDOWS = st.builds(Window, st.frozensets(st.integers(0, 6), min_size=1), CLOCK, CLOCK).filter(
    lambda w: w.start != w.end)
RULES = st.builds(QuietRules, st.lists(WINDOWS, max_size=3).map(tuple),
                  st.frozensets(st.dates(date(2026, 1, 1), date(2027, 12, 31)), max_size=3))
INSTANTS = st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC))


@settings(max_examples=400, deadline=None)
@given(RULES, ZONES, INSTANTS)
def test_no_push_leaves_inside_a_quiet_window(rules: QuietRules, zone: ZoneInfo,
                                              now: datetime) -> None:
    try:
        release = quiet_until(rules, zone, now)
    except InvalidInput:
        return  # a profile that never ends is refused, not evaluated
    leaves = now if release is None else release
    assert not is_quiet(rules, zone, leaves)
    assert leaves >= now
    if release is not None:
        assert is_quiet(rules, zone, now)
        # nothing earlier would have done: the minute before release is still quiet
        assert is_quiet(rules, zone, max(now, release - timedelta(seconds=1)))


def test_inside_the_repeated_hour_the_second_time_round_ends_at_the_second() -> None:
    rules = QuietRules((Window(EVERY_DAY, time(0, 0), time(1, 30)),))
    second_pass = datetime(2026, 11, 1, 6, 15, tzinfo=UTC)  # 01:15 EST, after the fall-back
    assert is_quiet(rules, NY, second_pass)
    assert quiet_until(rules, NY, second_pass) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)


def test_a_quiet_date_ending_in_a_midnight_fall_back_ends() -> None:
    # Asia/Beirut fell back at midnight: 2023-10-29 00:00 EEST → 2023-10-28 23:00 EET again
    beirut = ZoneInfo("Asia/Beirut")
    rules = QuietRules(dates=frozenset({date(2023, 10, 28)}))
    release = quiet_until(rules, beirut, datetime(2023, 10, 28, 12, 0, tzinfo=UTC))
    assert release is not None
    assert not is_quiet(rules, beirut, release)
    assert release.astimezone(beirut).date() == date(2023, 10, 29)


def test_the_profile_in_the_docs_is_valid_and_behaves_as_described() -> None:
    import json
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "compliance.md").read_text()
    block = re.search(r"```json\n(\{\"name\": \"Default\".*?)```", text, re.S)
    assert block is not None
    profile = profile_from_document(json.loads(block.group(1)))
    paris, new_york = ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")
    at = local(paris, 2026, 6, 10, 22, 30)
    general = profile.rules_for({}, Category.COMMERCIAL)
    assert quiet_until(general, paris, at) == local(paris, 2026, 6, 11, 8, 0)
    assert quiet_until(general, new_york, at) is None
    assert profile.rules_for({"country": "fr"}, Category.COMMERCIAL).windows[0].days == {6}
