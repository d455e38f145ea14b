"""Compliance live, against the emulators, with `clarion serve` started as a user starts it:
a send across a quiet window arrives when the window ends (none before), a person over the
frequency cap is blocked at release, and an opted-out person receives nothing."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Emulators, Service

pytestmark = pytest.mark.e2e


def _fcm_sends(emulators: Emulators) -> list[dict[str, Any]]:
    return [r for r in emulators.fcm_records()
            if r.get("path", "").endswith(":send") and r.get("status") == 200
            and not r["request"]["body"].get("validate_only")]


def _to(emulators: Emulators, token: str) -> list[datetime]:
    return [datetime.fromisoformat(r["at"]) for r in _fcm_sends(emulators)
            if r["request"]["body"]["message"]["token"] == token]


def _wait(predicate: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Org:
    """Three people with one FCM device each (`held`, `opted_out`, `capped`), an app on the
    emulators, and an HTTP client with the org's admin token."""

    http: httpx.Client
    base: str
    app: dict[str, Any]
    people: dict[str, str]  # role -> person id
    tokens: dict[str, str]  # person id -> device token

    def send(self, people: list[str]) -> str:
        r = self.http.post(f"{self.base}/sends", json={
            "app_id": self.app["id"], "user_ids": people, "message": {"title": "Hi", "body": "x"}})
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    def cap_one_and_opt_out(self, emulators: Emulators) -> str:
        """A cap of one push a day, used up by `capped`; `opted_out` opts out. Returns the
        first send's id."""
        # Caps count pushes from the moment they are set: set, then one push to `capped`.
        assert self.http.put(f"{self.base}/frequency-caps", json={
            "push": {"per_24h": 1, "per_7d": None, "per_30d": None}}).status_code == 200
        first = self.send([self.people["capped"]])
        _wait(lambda: len(_to(emulators, self.tokens[self.people["capped"]])) == 1,
              "the first push", 60)
        r = self.http.put(f"{self.base}/apps/{self.app['id']}/people/"
                          f"{self.people['opted_out']}/consent",
                          json={"opted_in": False, "source": "app settings"})
        assert r.status_code == 200, r.text
        return first

    def quiet_now(self) -> datetime:
        """A quiet window from this minute to the next minute boundary at least 30 s away;
        returns its end."""
        now = datetime.now(UTC)
        end = (now + timedelta(minutes=1 if now.second < 30 else 2)).replace(second=0,
                                                                             microsecond=0)
        window = {"start": f"{now:%H:%M}", "end": f"{end:%H:%M}"}
        r = self.http.put(f"{self.base}/quiet-times", json={
            "name": "Now", "general": {"commercial": {"windows": [window]}}})
        assert r.status_code == 200, r.text
        return end


@contextmanager
def _org(service: Service, emulators: Emulators, tmp_path: Path) -> Iterator[Org]:
    service.start()
    org = service.cli("orgs", "create", "--name", "Contoso", "--json")
    admin = {"authorization": f"Bearer {org['admin_token']}"}
    document = emulators.app_document()
    document["settings"] = {"dry_run_on_register": False}
    (tmp_path / "app.json").write_text(json.dumps(document))
    app = service.cli("apps", "create", "--org", org["id"], "--config",
                      str(tmp_path / "app.json"), "--json")
    people = {role: str(uuid.uuid4()) for role in ("held", "opted_out", "capped")}
    tokens = {p: f"token-{p}:APA91b" + "x" * 120 for p in people.values()}
    (tmp_path / "people.csv").write_text(
        "id,email\n" + "".join(f"{p},{i}@contoso.com\n" for i, p in enumerate(tokens)))
    service.cli("contacts", "import", "--org", org["id"], str(tmp_path / "people.csv"), "--json")
    base = f"{service.url}/v1/orgs/{org['id']}"
    with httpx.Client(timeout=30, headers=admin) as http:
        r = http.post(f"{service.url}/api/v1.0/orgs/{org['id']}/pushdeviceregistration/"
                      "devices/batch", headers={"x-ms-track-registration": "true"},
                      json=[{"MobileAppId": app["id"], "UserId": p, "ApiToken": app["api_token"],
                             "FcmDeviceToken": tok} for p, tok in tokens.items()])
        assert r.status_code == 202, r.text
        _wait(lambda: len(http.get(f"{base}/apps/{app['id']}/devices").json()["items"]) == 3,
              "3 devices", 60)
        yield Org(http, base, app, people, tokens)


def test_a_send_across_a_quiet_window_a_cap_and_an_opt_out(
        service: Service, emulators: Emulators, tmp_path: Path) -> None:
    with _org(service, emulators, tmp_path) as o:
        http, base, tokens = o.http, o.base, o.tokens
        held, opted_out, capped = (o.people[r] for r in ("held", "opted_out", "capped"))
        first = o.cap_one_and_opt_out(emulators)
        end = o.quiet_now()
        second = o.send([held, opted_out, capped])
        _wait(lambda: http.get(f"{base}/sends/{second}").json()["held"] == 2, "2 holds", 30)
        got = http.get(f"{base}/sends/{second}").json()
        assert (got["state"], got["blocked"]) == ("held", {"no_consent": 1})
        assert _to(emulators, tokens[held]) == []  # nothing before the window ends
        _wait(lambda: http.get(f"{base}/sends/{second}").json()["state"] == "done",
              "the release", 150)
        got = http.get(f"{base}/sends/{second}").json()
        assert got["blocked"] == {"no_consent": 1, "frequency_cap": 1}
        assert (got["held"], got["counts"]) == (0, {"accepted": 1})
        arrived = _to(emulators, tokens[held])
        assert len(arrived) == 1 and arrived[0] >= end
        assert _to(emulators, tokens[opted_out]) == []
        assert len(_to(emulators, tokens[capped])) == 1  # only the first send's
        assert http.get(f"{base}/sends/{first}").json()["counts"] == {"accepted": 1}
        export = http.get(f"{base}/sends/{second}/blocked", params={"format": "csv"})
        reasons = {line.split(",")[0]: line.split(",")[1]
                   for line in export.text.splitlines()[1:]}
        assert reasons == {opted_out: "no_consent", capped: "frequency_cap"}


def test_a_journey_across_a_quiet_window_a_cap_and_an_opt_out(
        service: Service, emulators: Emulators, tmp_path: Path) -> None:
    """The issue's journey case: a journey (hello, a 2-second wait, again) over the three
    people, started inside a quiet window. The held person's pushes arrive when the window
    ends, none before; the capped person is reported blocked and still goes through the whole
    journey; the opted-out person receives nothing."""
    with _org(service, emulators, tmp_path) as o:
        http, base, tokens = o.http, o.base, o.tokens
        held, opted_out, capped = (o.people[r] for r in ("held", "opted_out", "capped"))
        o.cap_one_and_opt_out(emulators)
        end = o.quiet_now()
        segment = http.post(f"{base}/segments", json={"name": "All", "filter": "email ne null"})
        assert segment.status_code == 201, segment.text
        ids = {}
        for name in ("hello", "again"):
            r = http.post(f"{base}/messages", json={
                "name": name, "app_id": o.app["id"], "category": "commercial",
                "title": name, "body": "x"})
            assert r.status_code == 201, r.text
            ids[name] = r.json()["id"]
        r = http.post(f"{base}/journeys", json={
            "name": "Across the night", "app_id": o.app["id"],
            "entry": {"type": "segment", "segment_id": segment.json()["id"],
                      "schedule": {"kind": "once"}},
            "steps": [{"id": "hello", "type": "push", "message_id": ids["hello"]},
                      {"id": "pause", "type": "wait", "duration": "PT2S"},
                      {"id": "again", "type": "push", "message_id": ids["again"]}]})
        assert r.status_code == 201, r.text
        journey = r.json()["id"]
        assert http.post(f"{base}/journeys/{journey}/start").status_code == 200

        def report() -> dict[str, Any]:
            got = http.get(f"{base}/journeys/{journey}/report")
            assert got.status_code == 200, got.text
            out: dict[str, Any] = got.json()
            return out

        # Everyone goes through (held pushes do not hold the journey). Quiet time comes before
        # the cap: `held` and `capped` are both held at each push step, `opted_out` blocked.
        _wait(lambda: report()["inside"] == 0 and report()["held"] == 4, "the journey", 60)
        steps = {s["id"]: s for s in report()["steps"]}
        assert report()["people"] == 3
        assert [steps[s]["processed"] for s in ("hello", "pause", "again")] == [3, 3, 3]
        assert (steps["hello"]["held"], steps["again"]["held"]) == (2, 2)
        for step in ("hello", "again"):
            assert steps[step]["channel"]["blocked"]["by_reason"]["no_consent"] == 1
        assert steps["hello"]["channel"]["blocked"]["by_reason"]["frequency_cap"] == 0  # held
        assert _to(emulators, tokens[held]) == []  # nothing before the window ends
        _wait(lambda: report()["held"] == 0, "the releases", 150)
        # Both of `held`'s pushes are released at the window's end and screened again: the
        # first to go is sent, the second would be their second push of the day (cap 1).
        arrived = _to(emulators, tokens[held])
        assert len(arrived) == 1 and arrived[0] >= end, arrived
        steps = {s["id"]: s for s in report()["steps"]}
        capped_by_step = [steps[s]["channel"]["blocked"]["by_reason"]["frequency_cap"]
                          for s in ("hello", "again")]
        assert sum(capped_by_step) == 3  # `capped` at both steps, `held` at one
        assert _to(emulators, tokens[opted_out]) == []
        assert len(_to(emulators, tokens[capped])) == 1  # only the first send's
