"""Reports and timelines checked against hand-computed figures, on SQLite and PostgreSQL.

The data set goes through the real write paths where they exist: people, apps, CIJ device
registrations and sends through the API, fan-out and delivery by the worker's handlers with the
scripted fake sender (a token containing ``dead`` / ``mismatch`` / ``reject`` gets that
outcome). Interaction facts (delivered, opened, clicked, dismissed and their uniques) are
written with ``clarion.store.counters.increment`` — the function the interaction ingest calls —
and the timeline's interaction rows are inserted into ``interactions`` directly: the figures
below are what those writes must add up to.

The data set (T0 = 2026-03-02 10:15 UTC, hour H0 = 10:00; org A, apps A1 and A2; org B):

========  ====================================================================================
person    devices (app A1 unless said)
========  ====================================================================================
p0        two iOS devices (phone, tablet) — both accept
p1        Android ok, Android ``dead`` (invalid token)
p2        Android ``mismatch``
p3        Web ``reject``
p4        none
p5        one iOS device on app A2
========  ====================================================================================

* S1 at T0 (A1) to p0…p4: inflow 5, no valid device 1 (p4), devices targeted 6 (iOS 2,
  Android 3, Web 1), sent 3 devices (iOS 2, Android 1) / 2 people (p0 iOS, p1 Android), not
  sent: invalid token 1, mismatch 1 (Android), rejected 1 (Web).
  Interactions: H0 delivered iOS phone, iOS tablet, Android p1, iOS phone again (4 events,
  3 devices, 2 people); H0 opened iOS phone; H0 dismissed iOS tablet; H0+1 opened Android p1;
  H0+2 opened iOS phone again and clicked iOS phone. Engaged: p0 (H0, iOS), p1 (H0+1, Android).
* S2 at T0+1h (A1) to p0, p2 (p2's device is now ``mismatch``): inflow 2, no valid device 1,
  targeted 2 iOS, sent 2 devices / 1 person. H0+1: delivered iOS phone, clicked iOS tablet
  (engaged p0, iOS).
* S3 at T0+26h (A2) to p5: inflow 1, targeted / sent 1 iOS, 1 person. H0+27: opened (engaged).
* Org B: one person, one Android device, one send at T0, one open: never in org A's reports.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from clarion.api.app import create_app
from clarion.api.schemas.reports import ReportRead, TimelinePage
from clarion.bootstrap import Container, build
from clarion.cli.session import console
from clarion.clock import FrozenClock
from clarion.domain.outcomes import Platform
from clarion.providers.fake import FakeSender
from clarion.store import counters
from clarion.store import tables as t
from clarion.store.migrate import upgrade
from tests.conftest import TEST_SECRET, make_settings
from tests.factories import apns_token, app_document, b64u, drain, recorded, world

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
H0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@dataclass
class Data:
    org: str
    admin: str
    a1: str
    a2: str
    people: list[str]
    s1: str
    s2: str
    s3: str
    org_b: str
    admin_b: str
    app_b: str
    send_b: str
    person_b: str
    deliveries: dict[tuple[str, str], str]  # (send, device label) -> delivery id


async def _register(c: Container, client: httpx.AsyncClient, org: str, app_id: str,
                    api_token: str, person: str, **token: Any) -> None:
    r = await client.post(f"/api/v1.0/orgs/{org}/pushdeviceregistration/devices",
                          json={"MobileAppId": app_id, "UserId": person, "ApiToken": api_token,
                                **token})
    assert r.status_code == 202, r.text
    await drain(c)


async def _send(c: Container, client: httpx.AsyncClient, org: str, admin: str, app_id: str,
                people: list[str]) -> str:
    r = await client.post(f"/v1/orgs/{org}/sends", headers={"authorization": f"Bearer {admin}"},
                          json={"app_id": app_id, "user_ids": people,
                                "message": {"title": "Hello", "body": "There"}})
    assert r.status_code == 202, r.text
    await drain(c)
    return str(r.json()["id"])


async def _deliveries(c: Container, send_id: str) -> dict[str, str]:
    """device token -> delivery id for one send."""
    async with c.db.read() as conn:
        rows = (await conn.execute(
            t.deliveries.select().with_only_columns(t.deliveries.c.id, t.devices.c.token)
            .join_from(t.deliveries, t.devices, t.devices.c.id == t.deliveries.c.device_id)
            .where(t.deliveries.c.send_id == send_id))).all()
    return {r.token: r.id for r in rows}


async def _interact(c: Container, send_id: str, facts: list[tuple[str, datetime, str]]) -> None:
    """Roll-up increments as the interaction ingest writes them: (platform, at, metric)."""
    async with c.db.read() as conn:
        s = (await conn.execute(t.sends.select().where(t.sends.c.id == send_id))).one()
    async with c.db.write() as conn:
        await counters.increment(conn, [counters.Count(
            org_id=s.org_id, app_id=s.app_id, send_id=send_id, platform=p, at=at, metric=m)
            for p, at, m in facts])


def _kind(kind: str, *, device: bool = True, person: bool = True) -> list[str]:
    return [kind] + ([f"unique_{kind}_devices"] if device else []) + (
        [f"unique_{kind}_people"] if person else [])


async def build_data(c: Container, client: httpx.AsyncClient) -> Data:
    clock = c.clock
    assert isinstance(clock, FrozenClock)
    w = await world(c, people_count=5, dry_run_on_register=False)
    p = w.person_ids
    a2 = await c.apps.create(w.org_id, app_document("Contoso two", dry_run_on_register=False))
    p5 = (await c.people.create(w.org_id, {"kind": "contact"})).id
    phone, tablet = apns_token(), apns_token()
    reg = (c, client, w.org_id, w.app_id, w.api_token)
    await _register(*reg, p[0], ApnsDeviceToken=phone)
    await _register(*reg, p[0], ApnsDeviceToken=tablet)
    await _register(*reg, p[1], FcmDeviceToken="fcm-p1-ok")
    await _register(*reg, p[1], FcmDeviceToken="fcm-p1-dead")
    await _register(*reg, p[2], FcmDeviceToken="fcm-p2-mismatch")
    web = {"endpoint": "https://push.example.net/send/reject-p3",
           "keys": {"p256dh": b64u(65), "auth": b64u(16)}}
    await _register(*reg, p[3], WebPushSubscription=web)
    await _register(c, client, w.org_id, a2.app.id, a2.api_token, p5,
                    ApnsDeviceToken=apns_token())
    wb = await world(c, people_count=1, dry_run_on_register=False)
    await _register(c, client, wb.org_id, wb.app_id, wb.api_token, wb.person_ids[0],
                    FcmDeviceToken="fcm-b-ok")

    s1 = await _send(c, client, w.org_id, w.admin_token, w.app_id, p[:5])
    sb = await _send(c, client, wb.org_id, wb.admin_token, wb.app_id, wb.person_ids)
    d1 = await _deliveries(c, s1)
    clock.advance(3600)
    s2 = await _send(c, client, w.org_id, w.admin_token, w.app_id, [p[0], p[2]])
    d2 = await _deliveries(c, s2)
    clock.advance(25 * 3600)
    s3 = await _send(c, client, w.org_id, w.admin_token, a2.app.id, [p5])

    h = [H0 + i * HOUR for i in range(28)]
    await _interact(c, s1, [
        *[("ios", h[0], m) for m in _kind("delivered") + _kind("delivered", person=False)],
        ("android", h[0], "delivered"), ("android", h[0], "unique_delivered_devices"),
        ("android", h[0], "unique_delivered_people"), ("ios", h[0], "delivered"),  # repeat
        *[("ios", h[0], m) for m in _kind("opened")], ("ios", h[0], "unique_engaged_people"),
        *[("ios", h[0], m) for m in _kind("dismissed")],
        *[("android", h[1], m) for m in _kind("opened")],
        ("android", h[1], "unique_engaged_people"),
        ("ios", h[2], "opened"),  # p0 opens the phone again: an event, no unique
        *[("ios", h[2], m) for m in _kind("clicked")],
    ])
    await _interact(c, s2, [*[("ios", h[1], m) for m in _kind("delivered")],
                            *[("ios", h[1], m) for m in _kind("clicked")],
                            ("ios", h[1], "unique_engaged_people")])
    await _interact(c, s3, [*[("ios", h[27], m) for m in _kind("opened")],
                            ("ios", h[27], "unique_engaged_people")])
    await _interact(c, sb, [*[("android", h[0], m) for m in _kind("opened")],
                            ("android", h[0], "unique_engaged_people")])
    return Data(org=w.org_id, admin=w.admin_token, a1=w.app_id, a2=a2.app.id, people=[*p, p5],
                s1=s1, s2=s2, s3=s3, org_b=wb.org_id, admin_b=wb.admin_token, app_b=wb.app_id,
                send_b=sb, person_b=wb.person_ids[0],
                deliveries={**{(s1, k): v for k, v in _label(d1, phone, tablet).items()},
                            **{(s2, k): v for k, v in _label(d2, phone, tablet).items()}})


def _label(by_token: dict[str, str], phone: str, tablet: str) -> dict[str, str]:
    names = {phone: "phone", tablet: "tablet"}
    return {names.get(tok, tok): d for tok, d in by_token.items()}


@pytest.fixture
async def c(db_url: str, tmp_path: Path) -> AsyncIterator[Container]:
    await asyncio.to_thread(upgrade, db_url)
    container = build(make_settings(db_url, tmp_path), clock=FrozenClock(T0),
                      senders=dict.fromkeys(Platform, FakeSender()))
    await container.start()
    try:
        yield container
    finally:
        await container.close()


@pytest.fixture
def container(c: Container) -> Container:
    """The frozen-clock container: conftest's ``client`` talks to this one."""
    return c


@pytest.fixture
async def data(c: Container, client: httpx.AsyncClient) -> Data:
    return await build_data(c, client)


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def get_report(client: httpx.AsyncClient, d: Data, **params: Any) -> dict[str, Any]:
    r = await client.get(f"/v1/orgs/{d.org}/reports", headers=auth(d.admin), params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    ReportRead.model_validate(body)  # the documented schema is the real one (extra=forbid)
    return body


def flat(fig: dict[str, Any]) -> dict[str, Any]:
    """A figures object as {column: value} with the same names as the CSV columns."""
    out: dict[str, Any] = {"inflow": fig["inflow"], "sent_people": fig["sent"]["people"],
                           "sent_devices": fig["sent"]["devices"],
                           "targeted_devices": fig["targeted_devices"],
                           "engaged_people": fig["engaged_people"],
                           "blocked": fig["blocked"]["total"]}
    for level in ("people", "devices"):
        out[f"not_sent_{level}"] = fig["not_sent"][level]["total"]
        for reason, n in fig["not_sent"][level]["by_reason"].items():
            out[f"not_sent_{level}:{reason}"] = n
    for kind in ("delivered", "opened", "clicked", "dismissed"):
        i = fig[kind]
        out[kind] = (i["events"], i["unique_devices"], i["unique_people"])
    return out


ZERO_REASONS = {"not_sent_devices:credential_error": 0, "not_sent_devices:expired": 0}
ORG_A = {
    "inflow": 8, "sent_people": 4, "sent_devices": 6, "targeted_devices": 9,
    "not_sent_people": 2, "not_sent_people:no_valid_device": 2, "not_sent_devices": 3,
    "not_sent_devices:invalid_token": 1, "not_sent_devices:mismatch": 1,
    "not_sent_devices:rejected": 1, **ZERO_REASONS, "blocked": 0,
    "delivered": (5, 4, 3), "opened": (4, 3, 3), "clicked": (2, 2, 2), "dismissed": (1, 1, 1),
    "engaged_people": 4,
}


async def test_org_app_and_send_figures_and_rates_match_the_hand_computed_ones(
    client: httpx.AsyncClient, data: Data
) -> None:
    rng = {"since": (T0 - HOUR).isoformat(), "until": (T0 + timedelta(days=2)).isoformat()}
    org = await get_report(client, data, **rng)
    assert flat(org["totals"]) == ORG_A
    assert org["totals"]["rates"] == pytest.approx({
        "send_rate": 4 / 8, "delivery_rate": 4 / 6, "open_rate": 3 / 4,
        "click_through_rate": 2 / 4, "click_to_open_rate": 2 / 3, "engagement_rate": 4 / 4})
    assert org["totals"]["blocked"]["by_reason"] == {"frequency_cap": 0, "no_consent": 0,
                                                     "expired": 0}
    assert org["totals"]["held"] == {"total": 0, "by_reason": {"quiet_time": 0}}

    a1 = flat((await get_report(client, data, scope="app", id=data.a1, **rng))["totals"])
    assert a1 == {**ORG_A, "inflow": 7, "sent_people": 3, "sent_devices": 5,
                  "targeted_devices": 8, "opened": (3, 2, 2), "engaged_people": 3}
    a2 = await get_report(client, data, scope="app", id=data.a2, **rng)
    assert flat(a2["totals"])["opened"] == (1, 1, 1)
    assert (a2["totals"]["inflow"], a2["totals"]["sent"]) == (1, {"people": 1, "devices": 1})
    # A2's app reported an open but no delivery and no click: those rates are unknown, not 0 %.
    assert a2["totals"]["rates_not_reported"] == ["delivery_rate", "click_through_rate",
                                                  "click_to_open_rate"]
    assert a2["totals"]["rates"] == {"send_rate": 1.0, "delivery_rate": None, "open_rate": 1.0,
                                     "click_through_rate": None, "click_to_open_rate": None,
                                     "engagement_rate": 1.0}
    assert org["totals"]["rates_not_reported"] == []

    s1 = await get_report(client, data, scope="send", id=data.s1, **rng)
    assert flat(s1["totals"]) == {
        **ORG_A, "inflow": 5, "sent_people": 2, "sent_devices": 3, "targeted_devices": 6,
        "not_sent_people": 1, "not_sent_people:no_valid_device": 1,
        "delivered": (4, 3, 2), "opened": (3, 2, 2), "clicked": (1, 1, 1),
        "engaged_people": 2}
    assert s1["totals"]["rates"] == pytest.approx({
        "send_rate": 2 / 5, "delivery_rate": 1.0, "open_rate": 1.0, "click_through_rate": 0.5,
        "click_to_open_rate": 0.5, "engagement_rate": 1.0})
    s3 = await get_report(client, data, scope="send", id=data.s3, **rng)
    assert s3["totals"]["sent"] == {"people": 1, "devices": 1}
    assert s3["scope"] == "send" and s3["scope_id"] == data.s3


async def test_the_platform_split_adds_up_to_the_totals(
    client: httpx.AsyncClient, data: Data
) -> None:
    rep = await get_report(client, data, since=(T0 - HOUR).isoformat(),
                           until=(T0 + timedelta(days=2)).isoformat(), by_platform="true")
    plat = {p: flat(f) for p, f in rep["platforms"].items()}
    assert list(plat) == ["ios", "android", "web", "none"]
    ios, android, web, none = plat["ios"], plat["android"], plat["web"], plat["none"]
    assert (ios["sent_people"], ios["sent_devices"], ios["targeted_devices"]) == (3, 5, 5)
    assert (ios["delivered"], ios["opened"], ios["clicked"], ios["dismissed"]) == (
        (4, 3, 2), (3, 2, 2), (2, 2, 2), (1, 1, 1))
    assert ios["engaged_people"] == 3 and ios["not_sent_devices"] == 0
    assert (android["sent_people"], android["sent_devices"], android["targeted_devices"]) == (
        1, 1, 3)
    assert (android["not_sent_devices:invalid_token"], android["not_sent_devices:mismatch"],
            android["not_sent_devices:rejected"]) == (1, 1, 0)
    assert (android["delivered"], android["opened"], android["clicked"]) == (
        (1, 1, 1), (1, 1, 1), (0, 0, 0))
    assert (web["targeted_devices"], web["not_sent_devices:rejected"], web["sent_devices"]) == (
        1, 1, 0)
    assert (none["inflow"], none["not_sent_people:no_valid_device"], none["sent_devices"]) == (
        8, 2, 0)
    for column, total in ORG_A.items():
        parts = [plat[p][column] for p in plat]
        summed = (tuple(map(sum, zip(*parts, strict=True))) if isinstance(total, tuple)
                  else sum(parts))
        assert summed == total, column
    assert rep["platforms"]["ios"]["rates"]["send_rate"] is None  # inflow is person-level
    assert rep["platforms"]["ios"]["rates"]["open_rate"] == pytest.approx(2 / 3)


async def test_hourly_and_daily_series_are_zero_filled_and_sum_to_the_totals(
    c: Container, data: Data
) -> None:
    hourly = await c.reports.report(
        data.org, scope="org", scope_id=None, since=T0,
        until=T0 + timedelta(hours=27, minutes=1), granularity="hour", by_platform=True)
    assert (hourly.since, hourly.until) == (H0, H0 + 28 * HOUR)  # widened to whole hours
    assert [b.start for b in hourly.series] == [H0 + i * HOUR for i in range(28)]
    inflow = [b.figures.inflow for b in hourly.series]
    assert inflow == [5, 2] + [0] * 24 + [1, 0]
    assert [b.figures.opened.events for b in hourly.series] == [1, 1, 1] + [0] * 24 + [1]
    assert [b.figures.opened.unique_people for b in hourly.series] == [1, 1, 0] + [0] * 24 + [1]
    assert [b.figures.clicked.events for b in hourly.series][:3] == [0, 1, 1]
    assert [b.figures.engaged_people for b in hourly.series][:3] == [1, 2, 0]
    assert [b.figures.delivered.events for b in hourly.series][:3] == [4, 1, 0]
    assert hourly.series[0].platforms["web"].not_sent_devices.by_reason["rejected"] == 1
    assert hourly.series[5].platforms["ios"].sent_devices == 0  # zero-filled per platform
    for col, total in hourly.totals.columns():
        assert sum(dict(b.figures.columns())[col] for b in hourly.series) == total, col

    daily = await c.reports.report(data.org, scope="org", scope_id=None, since=T0,
                                   until=T0 + timedelta(days=2), granularity="day",
                                   by_platform=False)
    day = H0.replace(hour=0)
    assert (daily.since, daily.until) == (day, day + timedelta(days=3))
    assert [b.start for b in daily.series] == [day + timedelta(days=i) for i in range(3)]
    assert [b.figures.inflow for b in daily.series] == [7, 1, 0]
    assert [b.figures.sent_people for b in daily.series] == [3, 1, 0]
    assert [b.figures.opened.events for b in daily.series] == [3, 1, 0]
    assert daily.totals == hourly.totals
    assert daily.platforms == {} and daily.series[0].platforms == {}


async def test_range_edges_are_whole_hours_and_the_end_is_exclusive(
    c: Container, data: Data
) -> None:
    async def org(since: datetime, until: datetime) -> Any:
        return (await c.reports.report(data.org, scope="org", scope_id=None, since=since,
                                       until=until, granularity="hour",
                                       by_platform=False)).totals

    first_hour = await org(H0, H0 + HOUR)
    assert (first_hour.inflow, first_hour.sent_people, first_hour.opened.events) == (5, 2, 1)
    assert (await org(H0 + HOUR, H0 + 2 * HOUR)).inflow == 2
    inside = await org(T0 + HOUR, T0 + HOUR + timedelta(minutes=1))  # widened to 11:00-12:00
    assert (inside.inflow, inside.clicked.events) == (2, 1)
    before = await org(H0 - 5 * HOUR, H0)
    assert before == (await org(H0 + 3 * HOUR, H0 + 26 * HOUR))  # both empty
    assert before.inflow == 0 and before.rates.send_rate is None
    last = await org(H0 + 27 * HOUR, H0 + 28 * HOUR)
    assert (last.inflow, last.opened.unique_people) == (0, 1)


async def test_csv_export_has_the_same_figures(client: httpx.AsyncClient, data: Data) -> None:
    r = await client.get(f"/v1/orgs/{data.org}/reports", headers=auth(data.admin), params={
        "since": H0.isoformat(), "until": (H0 + 3 * HOUR).isoformat(), "granularity": "hour",
        "by_platform": "true", "format": "csv"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    key = {(row["period"], row["platform"]): row for row in rows}
    assert len(rows) == 5 * (1 + 3)  # (total + 3 hours) x (all, ios, android, web, none)
    total = key[("total", "all")]
    assert (total["inflow"], total["sent_people"], total["opened_events"]) == ("7", "3", "3")
    assert total["not_sent_devices:rejected"] == "1" and total["clicked_people"] == "2"
    assert float(total["open_rate"]) == pytest.approx(2 / 3, abs=1e-6)
    assert key[("total", "none")]["inflow"] == "7" and key[("total", "ios")]["inflow"] == "0"
    assert key[("total", "ios")]["send_rate"] == ""  # nothing to divide by
    h1 = key[((H0 + HOUR).isoformat(), "all")]
    assert (h1["inflow"], h1["clicked_events"], h1["open_rate"]) == ("2", "1", "")
    assert key[((H0 + 2 * HOUR).isoformat(), "ios")]["opened_events"] == "1"


async def test_scopes_are_confined_to_the_org_and_bad_input_is_a_clear_4xx(
    client: httpx.AsyncClient, data: Data
) -> None:
    rng = {"since": (T0 - HOUR).isoformat(), "until": (T0 + timedelta(days=2)).isoformat()}
    b = await client.get(f"/v1/orgs/{data.org_b}/reports", headers=auth(data.admin_b),
                         params=rng)
    assert b.status_code == 200
    assert (b.json()["totals"]["inflow"], b.json()["totals"]["opened"]["events"]) == (1, 1)
    url = f"/v1/orgs/{data.org}/reports"
    for params in ({"scope": "send", "id": data.send_b}, {"scope": "app", "id": data.app_b}):
        r = await client.get(url, headers=auth(data.admin), params={**params, **rng})
        assert r.status_code == 404, r.text
        assert r.json()["error"]["fix"]
    r = await client.get(f"/v1/orgs/{data.org_b}/reports", headers=auth(data.admin))
    assert r.status_code == 404  # org A's token cannot read org B
    assert (await client.get(url)).status_code == 401
    unknown_journey = await get_report(client, data, scope="journey", id="j-1", **rng)
    assert unknown_journey["totals"]["inflow"] == 0  # journeys: zero until they exist
    bad = [
        ({"scope": "campaign"}, 422), ({"scope": "app"}, 400), ({"id": data.a1}, 400),
        ({"scope": "journey_step", "id": "no-slash"}, 400), ({"granularity": "week"}, 422),
        ({"since": "yesterday"}, 422),
        ({"since": T0.isoformat(), "until": (T0 - HOUR).isoformat()}, 400),
        ({"since": T0.isoformat(), "until": (T0 + timedelta(days=32)).isoformat(),
          "granularity": "hour"}, 400),
        ({"since": T0.isoformat(), "until": (T0 + timedelta(days=401)).isoformat()}, 400),
        ({"format": "xml"}, 422),
        ({"since": "0001-01-01T00:00:00+05:00"}, 400),  # out of range, not a crash
        ({"until": "9999-12-31T23:59:59"}, 400),
    ]
    for params, status in bad:
        r = await client.get(url, headers=auth(data.admin), params=params)
        assert r.status_code == status, (params, r.text)
        assert r.json()["error"]["message"]
    ok = await client.get(url, headers=auth(data.admin), params={
        "since": T0.isoformat(), "until": (T0 + timedelta(days=31)).isoformat(),
        "granularity": "hour"})
    assert ok.status_code == 200 and len(ok.json()["series"]) == 31 * 24 + 1
    default = await get_report(client, data)  # the last 7 days up to now (the frozen clock)
    assert default["granularity"] == "day" and len(default["series"]) == 8
    assert default["totals"]["inflow"] == 8


async def test_a_timeline_lists_every_send_and_interaction_newest_first(
    c: Container, client: httpx.AsyncClient, data: Data
) -> None:
    p0 = data.people[0]
    dl = data.deliveries

    def act(send: str, device: str, kind: str, at: datetime) -> dict[str, Any]:
        return {"org_id": data.org, "app_id": data.a1, "send_id": send,
                "delivery_id": dl[(send, device)], "person_id": p0, "device_id": device,
                "platform": "ios", "kind": kind, "source": "cij_events", "first": True,
                "journey_id": None, "journey_step_id": None, "message_id": None,
                "occurred_at": at}

    m = timedelta(minutes=1)
    async with c.db.write() as conn:  # interaction rows as the ingest stores them
        await conn.execute(t.interactions.insert(), [
            act(data.s1, "phone", "delivered", T0 + 5 * m),
            act(data.s1, "tablet", "delivered", T0 + 5 * m),  # same instant as the phone's
            act(data.s1, "tablet", "dismissed", T0 + 6 * m),
            act(data.s1, "phone", "opened", T0 + 10 * m),
            act(data.s2, "phone", "delivered", T0 + HOUR + 5 * m),
            act(data.s2, "tablet", "clicked", T0 + HOUR + 20 * m),
            act(data.s1, "phone", "opened", T0 + 2 * HOUR - 5 * m),
            act(data.s1, "phone", "clicked", T0 + 2 * HOUR),
        ])
    url = f"/v1/orgs/{data.org}/people/{p0}/timeline"
    r = await client.get(url, headers=auth(data.admin))
    assert r.status_code == 200, r.text
    page = TimelinePage.model_validate(r.json())
    got = [(e.kind, e.send_id, e.at) for e in page.items]
    assert got == [
        ("clicked", data.s1, T0 + 2 * HOUR), ("opened", data.s1, T0 + 2 * HOUR - 5 * m),
        ("clicked", data.s2, T0 + HOUR + 20 * m), ("delivered", data.s2, T0 + HOUR + 5 * m),
        ("send", data.s2, T0 + HOUR), ("opened", data.s1, T0 + 10 * m),
        ("dismissed", data.s1, T0 + 6 * m), ("delivered", data.s1, T0 + 5 * m),
        ("delivered", data.s1, T0 + 5 * m), ("send", data.s1, T0)]
    assert page.next_before is None
    s1 = page.items[-1]
    assert (s1.outcome, s1.title, s1.app_id) == ("sent", "Hello", data.a1)
    assert sorted((d.platform, d.state) for d in s1.devices) == [("ios", "accepted")] * 2
    assert {d.delivery_id for d in s1.devices} == {dl[(data.s1, "phone")],
                                                   dl[(data.s1, "tablet")]}
    assert page.items[0].source == "cij_events" and page.items[0].platform == "ios"

    # Paging: a page that ends inside the two deliveries at T0+5m keeps both.
    first = (await client.get(url, headers=auth(data.admin), params={"limit": 8})).json()
    assert len(first["items"]) == 9 and first["items"][-1]["kind"] == "delivered"
    rest = (await client.get(url, headers=auth(data.admin),
                             params={"limit": 8, "before": first["next_before"]})).json()
    assert [e["kind"] for e in rest["items"]] == ["send"] and rest["next_before"] is None
    three = (await client.get(url, headers=auth(data.admin), params={"limit": 3})).json()
    assert [e["kind"] for e in three["items"]] == ["clicked", "opened", "clicked"]
    assert datetime.fromisoformat(three["next_before"]) == T0 + HOUR + 20 * m

    outcomes = {}
    for i in (1, 2, 3, 4):
        entries = await c.reports.timeline(data.org, data.people[i])
        outcomes[i] = [(e.send_id, e.outcome) for e in entries]
    assert outcomes[1] == [(data.s1, "sent")]
    assert outcomes[2] == [(data.s2, "no_valid_device"), (data.s1, "not_sent")]
    assert outcomes[3] == [(data.s1, "not_sent")]
    assert outcomes[4] == [(data.s1, "no_valid_device")]
    p2 = await c.reports.timeline(data.org, data.people[2])
    assert [(d.state, d.reason) for d in p2[1].devices] == [("mismatch", "BadDeviceToken")]
    p3 = await c.reports.timeline(data.org, data.people[3])
    assert [(d.platform, d.state) for d in p3[0].devices] == [("web", "rejected")]

    other = await client.get(f"/v1/orgs/{data.org}/people/{data.person_b}/timeline",
                             headers=auth(data.admin))
    assert other.status_code == 404  # another org's person does not exist here
    bad = await client.get(url, headers=auth(data.admin), params={"limit": 0})
    assert bad.status_code == 422
    bad = await client.get(url, headers=auth(data.admin),
                           params={"before": "0001-01-01T00:00:00+01:00"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "before"


async def test_a_send_still_fanning_out_is_pending_in_the_timeline(
    c: Container, client: httpx.AsyncClient
) -> None:
    w = await world(c, people_count=1, dry_run_on_register=False)
    r = await client.post(f"/v1/orgs/{w.org_id}/sends", headers=auth(w.admin_token),
                          json={"app_id": w.app_id, "user_id": w.person_ids[0],
                                "message": {"title": "Later"}})
    assert r.status_code == 202
    entries = await c.reports.timeline(w.org_id, w.person_ids[0])
    assert [(e.kind, e.outcome, e.title) for e in entries] == [("send", "pending", "Later")]


def test_the_cli_shows_tables_charts_csv_json_and_svg(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clarion.cli.main import app as cli

    async def prepare() -> Data:
        await asyncio.to_thread(upgrade, sqlite_url)
        container = build(make_settings(sqlite_url, tmp_path), clock=FrozenClock(T0),
                          senders=dict.fromkeys(Platform, FakeSender()))
        await container.start()
        try:
            transport = httpx.ASGITransport(app=create_app(container))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as cl:
                return await build_data(container, cl)
        finally:
            await container.close()

    d = asyncio.run(prepare())
    monkeypatch.setenv("CLARION_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CLARION_SECRET_KEY", TEST_SECRET)
    monkeypatch.setattr(console, "width", 200)  # tables unwrapped, whatever the terminal
    monkeypatch.setenv("CLARION_VAR_DIR", str(tmp_path / "var"))
    runner = CliRunner()
    rng = ["--since", (T0 - HOUR).isoformat(), "--until", (T0 + timedelta(days=2)).isoformat()]

    out = runner.invoke(cli, ["reports", "show", "--org", d.org, *rng, "--json"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert flat(body["totals"]) == ORG_A

    svg = tmp_path / "chart.svg"
    out = runner.invoke(cli, ["reports", "show", "--org", d.org, "--app", d.a1, *rng,
                              "--by-platform", "--svg", str(svg)])
    assert out.exit_code == 0, out.output
    assert "Open rate" in out.output and "66.7%" in out.output  # 2 of 3 people opened
    assert "Inflow (people)" in out.output and "android" in out.output
    assert "█" in out.output  # the series chart
    assert svg.read_text().startswith("<svg") and "Sent (people)" in svg.read_text()

    out = runner.invoke(cli, ["reports", "show", "--org", d.org, "--send", d.s1, *rng,
                              "--csv"])
    assert out.exit_code == 0, out.output
    total = next(csv.DictReader(io.StringIO(out.stdout)))
    assert (total["period"], total["inflow"], total["sent_people"]) == ("total", "5", "2")

    out = runner.invoke(cli, ["reports", "show", "--org", d.org, "--granularity", "hour",
                              "--since", "2026-02-01", "--until", "2026-03-05"])
    assert out.exit_code == 1 and "at most 31 days" in out.output
    out = runner.invoke(cli, ["reports", "show", "--org", d.org, *rng, "--chart", "nope"])
    assert out.exit_code != 0 and "opened_people" in out.output

    out = runner.invoke(cli, ["reports", "timeline", "--org", d.org, "--person", d.people[2]],
                        )
    assert out.exit_code == 0, out.output
    assert "no_valid_device" in out.output and "mismatch (BadDeviceToken)" in out.output


async def test_interactions_reported_by_the_app_reach_the_reports_and_the_timeline(
    c: Container, client: httpx.AsyncClient
) -> None:
    """End to end through the interaction API (the other half of the roll-ups)."""
    clock = c.clock
    assert isinstance(clock, FrozenClock)
    w = await world(c, people_count=1, dry_run_on_register=False)
    person = w.person_ids[0]
    phone = apns_token()
    reg = (c, client, w.org_id, w.app_id, w.api_token, person)
    await _register(*reg, ApnsDeviceToken=phone)
    await _register(*reg, FcmDeviceToken="fcm-e2e-ok")
    send_id = await _send(c, client, w.org_id, w.admin_token, w.app_id, [person])

    async def event(token: str, status: Any) -> None:
        clock.advance(600)
        r = await client.post(f"/api/v1.0/orgs/{w.org_id}/pushdatareceiver/events", json={
            "TrackingId": send_id, "DeviceToken": token, "PushNotificationStatus": status})
        assert r.status_code == 202, r.text

    await event(phone, "Delivered")
    await event(phone, 1)  # Opened: H0 (10:35)
    await event(phone, "Opened")  # again, 10:45: an event, no unique
    await event("fcm-e2e-ok", 0)  # Clicked, on Android, 10:55
    await event("fcm-e2e-ok", "Dismissed")  # 11:05, the next hour
    assert await recorded(c) == 5  # one record job per accepted report here (one at a time)
    rep = await c.reports.report(w.org_id, scope="send", scope_id=send_id, since=H0,
                                 until=H0 + 2 * HOUR, granularity="hour", by_platform=True)
    tot = rep.totals
    assert (tot.inflow, tot.sent_people, tot.sent_devices) == (1, 1, 2)
    assert (tot.delivered.events, tot.delivered.unique_devices) == (1, 1)
    assert (tot.opened.events, tot.opened.unique_devices, tot.opened.unique_people) == (2, 1, 1)
    assert (tot.clicked.events, tot.clicked.unique_people, tot.engaged_people) == (1, 1, 1)
    assert tot.dismissed.unique_devices == 1
    assert tot.rates.as_dict() == {"send_rate": 1.0, "delivery_rate": 0.5, "open_rate": 1.0,
                                   "click_through_rate": 1.0, "click_to_open_rate": 1.0,
                                   "engagement_rate": 1.0}
    assert rep.platforms["ios"].opened.events == 2 and rep.platforms["ios"].engaged_people == 1
    assert rep.platforms["android"].clicked.unique_devices == 1
    assert [b.figures.dismissed.events for b in rep.series] == [0, 1]
    org = await c.reports.report(w.org_id, scope="org", scope_id=None, since=H0,
                                 until=H0 + 2 * HOUR, granularity="day", by_platform=False)
    assert org.totals == tot  # the org's only send: the roll-ups agree with the counters
    timeline = await c.reports.timeline(w.org_id, person)
    assert [e.kind for e in timeline] == ["dismissed", "clicked", "opened", "opened",
                                          "delivered", "send"]
    assert {e.source for e in timeline[:-1]} == {"cij_events"}


def test_the_cli_says_not_reported_and_since_24h_is_the_last_24_hours(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A send the app reported nothing about: its interaction rates read "not reported", not
    0 %; `--since 24h` is 24 hourly buckets, the current hour the last (issue 13)."""
    from clarion.cli.main import app as cli

    async def prepare() -> str:
        await asyncio.to_thread(upgrade, sqlite_url)
        container = build(make_settings(sqlite_url, tmp_path),  # the system clock, as the CLI
                          senders=dict.fromkeys(Platform, FakeSender()))
        await container.start()
        try:
            transport = httpx.ASGITransport(app=create_app(container))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as cl:
                w = await world(container, people_count=1, dry_run_on_register=False)
                await _register(container, cl, w.org_id, w.app_id, w.api_token,
                                w.person_ids[0], ApnsDeviceToken=apns_token())
                await _send(container, cl, w.org_id, w.admin_token, w.app_id, w.person_ids)
                return w.org_id
        finally:
            await container.close()

    org = asyncio.run(prepare())
    monkeypatch.setenv("CLARION_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CLARION_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("CLARION_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(console, "width", 200)
    runner = CliRunner()

    before = datetime.now(UTC)
    out = runner.invoke(cli, ["reports", "show", "--org", org, "--since", "24h", "--json"])
    after = datetime.now(UTC)
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    ends = {(t.replace(minute=0, second=0, microsecond=0) + HOUR).isoformat()
            for t in (before, after)}
    assert body["granularity"] == "hour" and body["until"] in ends
    assert len(body["series"]) == 24
    assert body["totals"]["sent"] == {"people": 1, "devices": 1}
    assert body["totals"]["rates"]["send_rate"] == 1.0
    assert body["totals"]["rates"]["delivery_rate"] is None
    assert body["totals"]["rates_not_reported"] == ["delivery_rate", "open_rate",
                                                    "click_through_rate", "engagement_rate"]

    out = runner.invoke(cli, ["reports", "show", "--org", org, "--since", "24h"])
    assert out.exit_code == 0, out.output
    rates = {line.split("│")[1].strip(): line.split("│")[2].strip()
             for line in out.output.splitlines() if line.count("│") >= 3}
    assert rates["Send rate"] == "100.0%"
    assert rates["Delivery rate"] == rates["Open rate"] == "not reported"
    assert rates["Click-to-open rate"] == "–"  # no opens to divide by
    assert "(hourly)" in out.output and " 0.0%" not in out.output
