"""Interaction reports: every accepted and refused shape, timestamps, redirects, rate limits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clarion.api.routes.cij_interactions import match
from clarion.domain.interactions import (
    CONSENT_CHOICES,
    ClientRateLimiter,
    ConsentChoice,
    InteractionKind,
    parse_event,
    parse_events,
    parse_legacy_event,
    parse_status,
    parse_timestamp,
    redirect_target,
    token_variants,
)
from clarion.errors import InvalidInput

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TID = "835b265c-7a30-45a9-bd59-970841c879ca"  # fixed: it names parametrized tests
TOKEN = "ab" * 32


def body(**extra: Any) -> dict[str, Any]:
    return {"TrackingId": TID, "DeviceToken": TOKEN, "PushNotificationStatus": 1, **extra}


@pytest.mark.parametrize(("status", "kind"), [
    (1, InteractionKind.OPENED), ("1", InteractionKind.OPENED),
    ("Opened", InteractionKind.OPENED), ("opened", InteractionKind.OPENED),
    (" OPENED ", InteractionKind.OPENED),
    (0, InteractionKind.CLICKED), ("0", InteractionKind.CLICKED),
    ("Clicked", InteractionKind.CLICKED),
    ("Delivered", InteractionKind.DELIVERED), ("delivered", InteractionKind.DELIVERED),
    ("Dismissed", InteractionKind.DISMISSED),
])
def test_every_status_shape_maps_to_its_kind(status: Any, kind: InteractionKind) -> None:
    assert parse_event(body(PushNotificationStatus=status), now=NOW).kind is kind
    legacy = parse_legacy_event({"DeviceToken": TOKEN, "PushNotificationStatus": status},
                                tracking_id=TID, now=NOW)
    assert legacy.kind is kind
    assert legacy.tracking_id == TID


@pytest.mark.parametrize("status", [2, -1, "2", "Read", "LinkClicked", "", True, False, None,
                                    1.0, [1], {"v": 1}, "Opted In", "opted-out", "OptIn",
                                    "Unsubscribed"])
def test_unknown_statuses_are_refused(status: Any) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_status(status)
    assert exc.value.field == "PushNotificationStatus"
    assert "Opened" in exc.value.fix
    assert '"OptedIn"' in exc.value.fix and '"OptedOut"' in exc.value.fix


@pytest.mark.parametrize(("status", "choice"), [
    ("OptedIn", ConsentChoice.OPTED_IN), ("optedin", ConsentChoice.OPTED_IN),
    (" OPTEDIN ", ConsentChoice.OPTED_IN), ("opted_in", ConsentChoice.OPTED_IN),
    ("Opted_In", ConsentChoice.OPTED_IN),
    ("OptedOut", ConsentChoice.OPTED_OUT), ("optedout", ConsentChoice.OPTED_OUT),
    ("opted_out", ConsentChoice.OPTED_OUT), ("OPTED_OUT", ConsentChoice.OPTED_OUT),
])
def test_consent_statuses_parse_to_a_consent_choice_on_both_endpoints(
        status: str, choice: ConsentChoice) -> None:
    assert parse_status(status) is choice
    assert parse_event(body(PushNotificationStatus=status), now=NOW).kind is choice
    legacy = parse_legacy_event({"DeviceToken": TOKEN, "PushNotificationStatus": status},
                                tracking_id=TID, now=NOW)
    assert legacy.kind is choice


def test_consent_choices_are_no_interaction_kinds() -> None:
    assert {"opted_in", "opted_out"} == CONSENT_CHOICES
    assert not CONSENT_CHOICES & {kind.value for kind in InteractionKind}
    assert all(not isinstance(choice, InteractionKind) for choice in ConsentChoice)


def test_a_batch_mixes_consent_choices_with_interactions_and_keeps_their_timestamps() -> None:
    at = NOW - timedelta(hours=3)
    reports = parse_events([body(PushNotificationStatus="OptedOut", Timestamp=at.isoformat()),
                            body(), body(PushNotificationStatus="opted_in")], now=NOW)
    assert [r.kind for r in reports] == [ConsentChoice.OPTED_OUT, InteractionKind.OPENED,
                                         ConsentChoice.OPTED_IN]
    assert [r.occurred_at for r in reports] == [at, NOW, NOW]
    with pytest.raises(InvalidInput) as exc:
        parse_events([body(PushNotificationStatus="OptedOut"),
                      body(PushNotificationStatus="Opt-Out")], now=NOW)
    assert exc.value.message.startswith("item 1: PushNotificationStatus")
    assert "OptedOut" in exc.value.fix


def test_keys_are_case_insensitive_and_the_guid_is_normalised() -> None:
    report = parse_event({"trackingid": TID.upper(), "DEVICETOKEN": f"  {TOKEN} ",
                          "pushNotificationStatus": "1"}, now=NOW)
    assert report.tracking_id == TID
    assert report.device_token == TOKEN
    assert report.occurred_at == NOW


def test_a_web_push_subscription_object_stands_for_its_endpoint() -> None:
    endpoint = "https://push.example.net/send/abc"
    report = parse_event(body(DeviceToken={"endpoint": endpoint, "keys": {}}), now=NOW)
    assert report.device_token == endpoint


@pytest.mark.parametrize(("doc", "field"), [
    ({"DeviceToken": TOKEN, "PushNotificationStatus": 1}, "TrackingId"),
    (body(TrackingId=""), "TrackingId"),
    (body(TrackingId="not-a-guid"), "TrackingId"),
    (body(TrackingId=123), "TrackingId"),
    ({"TrackingId": TID, "PushNotificationStatus": 1}, "DeviceToken"),
    (body(DeviceToken=""), "DeviceToken"),
    (body(DeviceToken=42), "DeviceToken"),
    (body(DeviceToken={"keys": {}}), "DeviceToken"),
    (body(DeviceToken="x" * 9000), "DeviceToken"),
    ({"TrackingId": TID, "DeviceToken": TOKEN}, "PushNotificationStatus"),
])
def test_missing_or_malformed_fields_name_the_field(doc: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_event(doc, now=NOW)
    assert exc.value.field == field
    assert exc.value.fix


@pytest.mark.parametrize("doc", [[], [body()], "x", 1, None])
def test_a_body_that_is_not_an_object_is_refused(doc: Any) -> None:
    with pytest.raises(InvalidInput, match="JSON object"):
        parse_event(doc, now=NOW)


def test_the_batch_form_is_one_to_a_hundred_reports_naming_the_bad_item() -> None:
    assert [r.kind for r in parse_events(body(), now=NOW)] == [InteractionKind.OPENED]
    two = parse_events([body(), body(PushNotificationStatus="Dismissed")], now=NOW)
    assert [r.kind for r in two] == [InteractionKind.OPENED, InteractionKind.DISMISSED]
    assert len(parse_events([body()] * 100, now=NOW)) == 100
    for bad in ([], [body()] * 101):
        with pytest.raises(InvalidInput, match="1 to 100"):
            parse_events(bad, now=NOW)
    with pytest.raises(InvalidInput) as exc:
        parse_events([body(), body(), body(TrackingId="x")], now=NOW)
    assert exc.value.message.startswith("item 2: TrackingId 'x' is not a GUID")
    assert exc.value.field == "TrackingId"
    with pytest.raises(InvalidInput) as exc:
        parse_events([[body()]], now=NOW)
    assert exc.value.message == "item 0: the body must be a JSON object"


def test_the_test_send_empty_tracking_id_gets_its_own_explanation() -> None:
    with pytest.raises(InvalidInput, match="missing or empty") as exc:
        parse_event(body(TrackingId=""), now=NOW)
    assert "Test sends" in exc.value.fix


def test_legacy_path_id_wins_but_a_contradicting_body_id_is_refused() -> None:
    same = parse_legacy_event(body(), tracking_id=TID.upper(), now=NOW)
    assert same.tracking_id == TID
    with pytest.raises(InvalidInput, match="differs"):
        parse_legacy_event(body(), tracking_id=str(uuid.uuid4()), now=NOW)
    with pytest.raises(InvalidInput) as exc:
        parse_legacy_event({"DeviceToken": TOKEN, "PushNotificationStatus": 0},
                           tracking_id="nope", now=NOW)
    assert exc.value.field == "TrackingId"


def test_timestamps_in_range_are_kept_in_utc() -> None:
    assert parse_timestamp(None, NOW) == NOW
    assert parse_timestamp("2026-03-01T10:00:00Z", NOW) == NOW - timedelta(hours=2)
    assert parse_timestamp("2026-03-01T12:00:00+02:00", NOW) == NOW - timedelta(hours=2)
    assert parse_timestamp("2026-03-01T11:00:00", NOW) == NOW - timedelta(hours=1)  # UTC
    assert parse_timestamp("2026-03-01T12:00:30Z", NOW) == NOW + timedelta(seconds=30)  # skew
    assert parse_timestamp("2026-01-31T12:00:01Z", NOW) > NOW - timedelta(days=30)
    report = parse_event(body(Timestamp="2026-02-28T08:30:00Z"), now=NOW)
    assert report.occurred_at == datetime(2026, 2, 28, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(("value", "why"), [
    ("2026-03-01T12:05:00Z", "future"), ("2026-01-01T00:00:00Z", "30 days"),
    ("yesterday", "ISO 8601"), (1700000000, "ISO 8601"), ("", "ISO 8601"),
])
def test_timestamps_out_of_range_or_malformed_are_refused(value: Any, why: str) -> None:
    with pytest.raises(InvalidInput, match=why) as exc:
        parse_timestamp(value, NOW)
    assert exc.value.field == "Timestamp"


def test_token_variants_add_the_lower_case_form_only_when_it_differs() -> None:
    assert token_variants("abc") == ("abc",)
    assert token_variants("ABc") == ("ABc", "abc")


@pytest.mark.parametrize(("link", "ok"), [
    ("https://contoso.com/offer?x=1", True), ("http://contoso.com/", True),
    ("contoso://orders/42", True), ("HTTPS://contoso.com/", True),
    ("javascript:alert(1)", False), ("JavaScript:alert(1)", False),
    ("data:text/html,<script>", False), ("vbscript:msgbox", False), ("file:///etc/passwd", False),
    ("https:///nohost", False), ("//evil.example/", False), ("/relative", False),
    ("https://contoso.com/\r\nSet-Cookie: x", False), ("", False), (None, False), (42, False),
    ("https://c.com/" + "x" * 2100, False),
])
def test_only_safe_stored_links_are_redirect_targets(link: Any, ok: bool) -> None:
    assert redirect_target(link) == (link if ok else None)


def test_the_rate_limiter_refuses_beyond_the_burst_and_refills() -> None:
    limiter = ClientRateLimiter(10, burst=3)
    assert [limiter.check("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.check("a", 0.0)
    assert wait == pytest.approx(0.1)
    assert limiter.check("b", 0.0) == 0.0  # per client
    assert limiter.check("a", 0.05) > 0  # half a token: still refused, and nothing taken
    assert limiter.check("a", 0.1) == 0.0
    assert limiter.check("a", 10.0) == 0.0  # refilled, capped at the burst
    assert [limiter.check("a", 10.0) for _ in range(3)][-1] > 0
    assert limiter.check("c", 0.0, 3) == 0.0  # a batch takes one token per report
    assert limiter.check("c", 0.0, 1) == pytest.approx(0.1)
    assert limiter.check("d", 0.0, 4) == pytest.approx(0.1)  # more than the bucket holds


def test_the_rate_limiter_forgets_the_least_recent_clients() -> None:
    limiter = ClientRateLimiter(1, burst=1, max_clients=2)
    limiter.check("a", 0.0)
    limiter.check("b", 0.0)
    limiter.check("c", 0.0)
    assert len(limiter) == 2
    assert limiter.check("a", 0.0) == 0.0  # forgotten, so a full bucket again
    assert limiter.check("c", 0.0) > 0
    with pytest.raises(ValueError, match="positive"):
        ClientRateLimiter(0)


@pytest.mark.parametrize(("path", "expected"), [
    ("/api/v1.0/orgs/o1/pushdatareceiver/events", ("o1", "")),
    (f"/api/v1.0/orgs/o1/pushchannel/event/trackings/{TID}", ("o1", TID)),
    ("/api/v1.0/orgs/o1/pushdatareceiver/events/", None),
    ("/api/v1.0/orgs//pushdatareceiver/events", None),
    ("/api/v1.0/orgs/o1/pushchannel/event/trackings/", None),
    ("/api/v1.0/orgs/o1/pushchannel/event/trackings/a/b", None),
    ("/api/v1.0/orgs/o1/pushdeviceregistration/devices", None),
    ("/v1/orgs/o1/sends", None),
])
def test_the_fast_path_matches_exactly_the_two_endpoints(
    path: str, expected: tuple[str, str] | None
) -> None:
    assert match(path) == expected
