"""Report figures, rates, ranges, series, CSV and charts from metric sums (no I/O)."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone

import pytest

from clarion.cli.charts import bar, sparkline, svg_chart
from clarion.cli.reports import _scope, label, parse_when, pick_granularity
from clarion.domain.report_csv import report_csv
from clarion.domain.report_range import (
    HourRange,
    checked_time,
    default_range,
    epoch_hour,
    report_range,
    trailing_range,
)
from clarion.domain.reports import assemble, check_scope, figures, ratio, rollup_scopes
from clarion.errors import InvalidInput
from clarion.store.rollups import rollup_rows

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday, midnight UTC
H0 = epoch_hour(T0)

SUMS = {
    "inflow": 10, "not_sent:no_valid_device": 2, "deliveries": 12, "sent": 9, "sent_people": 7,
    "not_sent:invalid_token": 1, "not_sent:mismatch": 1, "not_sent:rejected": 1,
    "delivered": 9, "unique_delivered_devices": 8, "unique_delivered_people": 6,
    "opened": 6, "unique_opened_devices": 5, "unique_opened_people": 4,
    "clicked": 3, "unique_clicked_devices": 2, "unique_clicked_people": 2,
    "dismissed": 1, "unique_dismissed_devices": 1, "unique_dismissed_people": 1,
    "unique_engaged_people": 5, "blocked:frequency_cap": 3, "held:quiet_time": 2,
}


def test_figures_read_every_metric_and_split_not_sent_by_level() -> None:
    f = figures(SUMS)
    assert (f.inflow, f.sent_people, f.sent_devices, f.targeted_devices) == (10, 7, 9, 12)
    assert dict(f.not_sent_people.by_reason) == {"no_valid_device": 2}
    assert dict(f.not_sent_devices.by_reason) == {
        "invalid_token": 1, "mismatch": 1, "rejected": 1, "credential_error": 0, "expired": 0}
    assert (f.not_sent_people.total, f.not_sent_devices.total) == (2, 3)
    assert dict(f.blocked.by_reason) == {"frequency_cap": 3, "no_consent": 0, "expired": 0}
    assert f.blocked.total == 3
    assert dict(f.held.by_reason) == {"quiet_time": 2} and f.held.total == 2
    assert (f.delivered.events, f.delivered.unique_devices, f.delivered.unique_people) == (9, 8, 6)
    assert (f.opened.events, f.opened.unique_devices, f.opened.unique_people) == (6, 5, 4)
    assert (f.clicked.events, f.clicked.unique_devices, f.clicked.unique_people) == (3, 2, 2)
    assert (f.dismissed.events, f.dismissed.unique_people) == (1, 1)
    assert f.engaged_people == 5


def test_rates_follow_the_cij_definitions() -> None:
    r = figures(SUMS).rates
    assert r.send_rate == pytest.approx(7 / 10)
    assert r.delivery_rate == pytest.approx(8 / 9)
    assert r.open_rate == pytest.approx(4 / 7)
    assert r.click_through_rate == pytest.approx(2 / 7)
    assert r.click_to_open_rate == pytest.approx(2 / 4)
    assert r.engagement_rate == pytest.approx(5 / 7)


def test_zero_denominators_give_null_rates_not_errors() -> None:
    r = figures({}).rates
    assert r.as_dict() == dict.fromkeys(r.as_dict())  # every rate None
    only_inflow = figures({"inflow": 4, "not_sent:no_valid_device": 4}).rates
    assert only_inflow.send_rate == 0.0
    assert only_inflow.open_rate is None and only_inflow.click_to_open_rate is None
    assert ratio(1, 0) is None and ratio(0, 3) == 0.0


def test_rates_whose_inputs_were_not_reported_are_unknown_not_zero() -> None:
    """Sent, but the apps reported no delivery and no click: delivery, click-through and
    click-to-open rates are unknown (null, listed), while the open rate is a real figure."""
    sums = {k: v for k, v in SUMS.items()
            if not k.startswith(("delivered", "unique_delivered", "clicked", "unique_clicked"))}
    f = figures(sums)
    assert f.not_reported == ["delivery_rate", "click_through_rate", "click_to_open_rate"]
    assert f.rates.delivery_rate is None and f.rates.click_to_open_rate is None
    assert f.rates.open_rate == pytest.approx(4 / 7)
    assert f.as_dict()["rates_not_reported"] == f.not_reported
    # Nothing reported at all: every interaction rate is unknown; the send rate is known.
    sent_only = figures({"inflow": 3, "sent": 3, "sent_people": 3, "deliveries": 3})
    assert sent_only.rates.send_rate == 1.0
    # (click-to-open has no opens to divide by: "–", not "not reported")
    assert sent_only.not_reported == ["delivery_rate", "open_rate", "click_through_rate",
                                      "engagement_rate"]
    assert figures(SUMS).not_reported == [] and figures({}).not_reported == []


def test_unknown_reasons_are_reported_after_the_known_ones() -> None:
    f = figures({"blocked:holiday": 2, "not_sent:provider_gone": 1, "blocked:no_consent": 1})
    assert list(f.blocked.by_reason) == ["frequency_cap", "no_consent", "expired", "holiday"]
    assert f.blocked.total == 3
    assert f.not_sent_devices.by_reason["provider_gone"] == 1
    assert "provider_gone" not in f.not_sent_people.by_reason


def test_flat_columns_and_dict_agree() -> None:
    f = figures(SUMS)
    cols = dict(f.columns())
    d = f.as_dict()
    assert cols["sent_people"] == d["sent"]["people"] == 7
    assert cols["not_sent_devices:invalid_token"] == d["not_sent"]["devices"]["by_reason"][
        "invalid_token"] == 1
    assert cols["opened_people"] == d["opened"]["unique_people"] == 4
    assert cols["blocked"] == d["blocked"]["total"] == 3
    assert cols["held:quiet_time"] == d["held"]["by_reason"]["quiet_time"] == 2
    assert "rates" in d and "rates" not in f.as_dict(rates=False)


# ------------------------------------------------------------------------------ ranges


def test_a_range_is_widened_to_whole_hours_or_days() -> None:
    h = report_range(T0 + timedelta(minutes=30), T0 + timedelta(hours=2, minutes=1), "hour")
    assert (h.since, h.until) == (T0, T0 + timedelta(hours=3))
    assert h.buckets() == [H0, H0 + 1, H0 + 2]
    exact = report_range(T0, T0 + timedelta(hours=2), "hour")
    assert exact.until == T0 + timedelta(hours=2)  # an exact end is not widened
    d = report_range(T0 + timedelta(hours=5), T0 + timedelta(days=1, hours=1), "day")
    assert (d.since, d.until) == (T0, T0 + timedelta(days=2))
    assert d.buckets() == [H0, H0 + 24]


def test_naive_times_are_utc_and_offsets_are_honoured() -> None:
    naive = report_range(datetime(2026, 3, 2), datetime(2026, 3, 2, 1), "hour")
    assert naive.start == H0
    paris = datetime(2026, 3, 2, 1, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Paris"))
    assert report_range(paris, paris + timedelta(hours=1), "hour").start == H0 + 1


@pytest.mark.parametrize(("since", "until", "gran", "field"), [
    (T0, T0, "hour", "until"),
    (T0, T0 - timedelta(hours=1), "day", "until"),
    (T0, T0 + timedelta(days=31, seconds=1), "hour", "since"),
    (T0, T0 + timedelta(days=401), "day", "since"),
    (T0, T0 + timedelta(days=1), "week", "granularity"),
])
def test_bad_ranges_are_refused_with_a_fix(since: datetime, until: datetime, gran: str,
                                           field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        report_range(since, until, gran)
    assert err.value.field == field and err.value.fix


def test_the_longest_allowed_ranges_pass() -> None:
    assert len(report_range(T0, T0 + timedelta(days=31), "hour").buckets()) == 31 * 24
    assert len(report_range(T0, T0 + timedelta(days=400), "day").buckets()) == 400


def test_since_24h_is_the_last_24_hours_in_whole_buckets() -> None:
    now = T0 + timedelta(hours=10, minutes=15)  # 10:15
    assert pick_granularity(None, "24h") == "hour"
    assert pick_granularity(None, "7d") == pick_granularity(None, None) == "day"
    assert pick_granularity(None, "2026-03-01") == pick_granularity(None, "800h") == "day"
    assert pick_granularity("day", "24h") == "day"
    start, end = trailing_range(now, 24, "hour")
    assert (start, end) == (T0 - timedelta(hours=13), T0 + timedelta(hours=11))
    assert len(report_range(start, end, "hour").buckets()) == 24  # this hour the last
    start, end = trailing_range(now, 7 * 24, "day")
    assert (start, end) == (T0 - timedelta(days=6), T0 + timedelta(days=1))
    assert len(report_range(start, end, "day").buckets()) == 7  # today the last
    on_the_hour = trailing_range(T0, 1, "hour")
    assert on_the_hour == (T0, T0 + timedelta(hours=1))
    # Not a whole number of buckets: the plain range, widened like any other.
    assert trailing_range(now, 36, "day") == (now - timedelta(hours=36), now)


def test_default_range() -> None:
    assert default_range(T0, "hour", None, None) == (T0 - timedelta(hours=24), T0)
    assert default_range(T0, "day", None, None) == (T0 - timedelta(days=7), T0)
    until = T0 - timedelta(days=1)
    assert default_range(T0, "day", None, until) == (until - timedelta(days=7), until)


@pytest.mark.parametrize(("scope", "scope_id"), [
    ("org", "x"), ("app", None), ("send", ""), ("campaign", "x"), ("journey_step", "j1")])
def test_bad_scopes_are_refused(scope: str, scope_id: str | None) -> None:
    with pytest.raises(InvalidInput):
        check_scope(scope, scope_id)


def test_good_scopes_pass() -> None:
    for scope, scope_id in [("org", None), ("app", "a"), ("journey_step", "j/s")]:
        check_scope(scope, scope_id)


# ------------------------------------------------------------------------------ series


def test_series_are_zero_filled_and_sum_to_the_totals() -> None:
    hours = HourRange(H0, H0 + 4, "hour")
    rows = [(H0, "", "inflow", 3), (H0, "ios", "sent", 2), (H0, "android", "sent", 1),
            (H0 + 2, "ios", "opened", 5), (H0 + 9, "ios", "opened", 100),  # outside: ignored
            (H0 + 2, "", "blocked:no_consent", 1)]
    r = assemble(org_id="o", scope="org", scope_id=None, hours=hours, by_platform=True,
                 rows=rows)
    assert [b.start for b in r.series] == [T0 + timedelta(hours=i) for i in range(4)]
    assert [b.figures.sent_devices for b in r.series] == [3, 0, 0, 0]
    assert [b.figures.opened.events for b in r.series] == [0, 0, 5, 0]
    assert r.totals.opened.events == 5 and r.totals.inflow == 3 and r.totals.blocked.total == 1
    assert list(r.platforms) == ["ios", "android", "none"]
    assert r.platforms["ios"].sent_devices == 2 and r.platforms["android"].sent_devices == 1
    assert r.platforms["none"].inflow == 3 and r.platforms["ios"].inflow == 0
    assert r.series[1].platforms["ios"].sent_devices == 0  # every platform in every bucket
    assert r.series[2].platforms["ios"].opened.events == 5
    d = r.as_dict()
    assert d["series"][2]["platforms"]["ios"]["opened"]["events"] == 5
    assert "rates" not in d["series"][0] and d["totals"]["rates"]["send_rate"] == 0.0
    assert d["totals"]["rates"]["open_rate"] is None  # nobody sent: nothing to divide by
    assert d["platforms"]["none"]["rates"] == dict.fromkeys(d["totals"]["rates"])
    assert r.platforms["none"].rates.send_rate == 0.0  # (computed, but not shown for none)


def test_without_platform_split_there_is_no_platform_detail() -> None:
    r = assemble(org_id="o", scope="app", scope_id="a", hours=HourRange(H0, H0 + 48, "day"),
                 by_platform=False, rows=[(H0 + 24, None, "sent", 4)])
    assert [b.figures.sent_devices for b in r.series] == [0, 4]
    assert r.platforms == {} and r.series[1].platforms == {}
    assert "platforms" not in r.as_dict()["series"][0]


def test_rollup_scopes_and_rows() -> None:
    assert rollup_scopes(app_id="a", journey_id=None, journey_step_id=None, message_id=None) == [
        ("org", ""), ("app", "a")]
    assert rollup_scopes(app_id="a", journey_id="j", journey_step_id="s1", message_id="m") == [
        ("org", ""), ("app", "a"), ("journey", "j"), ("journey_step", "j/s1"), ("message", "m")]
    base = {"org_id": "o", "platform": "ios", "hour": H0, "metric": "sent",
            "journey_id": None, "journey_step_id": None, "message_id": None}
    rows = rollup_rows([{**base, "app_id": "a", "send_id": "s1", "value": 2},
                        {**base, "app_id": "a", "send_id": "s2", "value": 3},
                        {**base, "app_id": "b", "send_id": "s3", "value": 1}])
    assert [(r["scope"], r["scope_id"], r["value"]) for r in rows] == [
        ("app", "a", 5), ("app", "b", 1), ("org", "", 6)]  # merged across sends, key order


# --------------------------------------------------------------------------------- CSV


def test_csv_has_totals_then_buckets_and_blank_rates_for_buckets() -> None:
    hours = HourRange(H0, H0 + 2, "hour")
    rows = [(H0, "ios", k, v) for k, v in SUMS.items() if k not in (
        "inflow", "not_sent:no_valid_device", "blocked:frequency_cap", "held:quiet_time")]
    rows += [(H0, "", "inflow", 10), (H0, "", "not_sent:no_valid_device", 2)]
    r = assemble(org_id="o", scope="org", scope_id=None, hours=hours, by_platform=True,
                 rows=rows)
    table = list(csv.DictReader(io.StringIO(report_csv(r))))
    assert [(row["period"], row["platform"]) for row in table] == [
        ("total", "all"), ("total", "ios"), ("total", "none"),
        (T0.isoformat(), "all"), (T0.isoformat(), "ios"), (T0.isoformat(), "none"),
        ((T0 + timedelta(hours=1)).isoformat(), "all"),
        ((T0 + timedelta(hours=1)).isoformat(), "ios"),
        ((T0 + timedelta(hours=1)).isoformat(), "none")]
    total = table[0]
    assert total["inflow"] == "10" and total["sent_people"] == "7"
    assert total["not_sent_people:no_valid_device"] == "2"
    assert total["opened_people"] == "4" and total["engaged_people"] == "5"
    assert float(total["open_rate"]) == pytest.approx(4 / 7, abs=1e-6)
    assert table[1]["send_rate"] == ""  # no inflow on a device platform: nothing to divide by
    assert table[2]["inflow"] == "10" and table[2]["send_rate"] == ""  # none: no rates at all
    assert table[3]["open_rate"] == "" and table[3]["opened_events"] == "6"
    assert table[6]["opened_events"] == "0"
    assert [row["rates_not_reported"] for row in table[:4]] == ["", "", "", ""]
    unreported = assemble(org_id="o", scope="org", scope_id=None, hours=hours,
                          by_platform=False, rows=[(H0, None, "sent", 2),
                                                   (H0, None, "sent_people", 2)])
    total = next(csv.DictReader(io.StringIO(report_csv(unreported))))
    assert total["delivery_rate"] == "" and total["rates_not_reported"] == (
        "delivery_rate open_rate click_through_rate engagement_rate")


# ------------------------------------------------------------------------------ charts


def test_sparkline_and_bars() -> None:
    assert sparkline([0, 1, 2, 4, 8]) == "▁▂▃▅█"
    assert sparkline([0, 0]) == "▁▁" and sparkline([]) == ""
    assert sparkline([1, 2], top=8) == "▂▃" and sparkline([9], top=8) == "█"  # shared scale
    assert bar(8, 8, 5) == "█████" and bar(0, 8, 5) == "" and bar(1, 0, 5) == ""
    assert bar(1, 16, 4) == "▎"  # 1/16 of 4 cells = 2 eighths
    assert bar(3, 4, 2) == "█▌"  # 1.5 cells


def test_svg_chart_is_well_formed_and_escapes_text() -> None:
    svg = svg_chart(title="org <&> app", labels=["a", "b", "c"],
                    series={"Sent (people)": [1, 0, 3], "Opened": [0, 0, 0]})
    root = ET.fromstring(svg)
    rects = list(root.iter("{http://www.w3.org/2000/svg}rect"))
    assert len(rects) == 1 + 2  # the background, then one bar per non-zero value
    heights = sorted(float(e.get("height", 0)) for e in rects[1:])
    assert heights[1] == pytest.approx(150) and heights[0] == pytest.approx(50)
    assert "org &lt;&amp;&gt; app" in svg


# --------------------------------------------------------------------------------- CLI


def test_cli_labels_times_and_scopes() -> None:
    assert label("opened_people") == "Opened (unique people)"
    assert label("delivered_events") == "Delivered (events)"
    assert label("not_sent_devices:invalid_token") == "  invalid token"
    assert label("sent_people") == "Sent (people)"
    assert parse_when("7d", now=T0, option="since") == T0 - timedelta(days=7)
    assert parse_when("2026-03-01T12:00:00Z", now=T0, option="since") == T0 - timedelta(hours=12)
    assert parse_when("2026-03-01", now=T0, option="since") == T0 - timedelta(days=1)
    with pytest.raises(InvalidInput):
        parse_when("last tuesday", now=T0, option="since")
    assert _scope(None, None, None, None, None) == ("org", None)
    assert _scope("a", None, None, None, None) == ("app", "a")
    assert _scope(None, None, "j", "s", None) == ("journey_step", "j/s")
    with pytest.raises(InvalidInput):
        _scope("a", "s", None, None, None)
    with pytest.raises(InvalidInput):
        _scope(None, None, None, "s", None)


@pytest.mark.parametrize("at", [
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),  # overflows when made UTC
    datetime(9999, 12, 31, 23, 59),  # its hour's end overflows
    datetime(1969, 12, 31, tzinfo=UTC),
])
def test_times_out_of_range_are_refused_not_crashed_on(at: datetime) -> None:
    with pytest.raises(InvalidInput) as err:
        report_range(at, datetime(2026, 1, 1, tzinfo=UTC), "day")
    assert err.value.field == "since"
    with pytest.raises(InvalidInput):
        default_range(T0, "day", None, at)
    with pytest.raises(InvalidInput):
        checked_time(at, "before")
