"""The issue's journey example live, against the emulators, with `clarion serve` started as a
user starts it and the PT8S wait in real time: each member of the segment gets exactly one
``hello`` per valid device, a gold person who opens gets ``perks``, a silver one who clicks
nothing more, the others ``nudge``, the person outside the segment nothing, and the journey
report's figures add up."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Emulators, Service

pytestmark = pytest.mark.e2e

EXAMPLE = """
{"name": "Welcome series", "app_id": "<app id>",
 "entry": {"type": "segment", "segment_id": "<segment id>", "schedule": {"kind": "once"}},
 "steps": [
   {"id": "hello", "type": "push", "message_id": "<message id>"},
   {"id": "opened", "type": "wait_for_interaction", "step": "hello", "interaction": "opened",
    "within": "PT8S", "yes": "tier", "no": "nudge"},
   {"id": "nudge", "type": "push", "message_id": "<second message id>", "next": "end"},
   {"id": "tier", "type": "branch",
    "branches": [{"when": "tier eq 'gold'", "next": "perks"}], "otherwise": "end"},
   {"id": "perks", "type": "push", "message_id": "<third message id>"}],
 "reentry": "never"}
"""


def _pushes(emulators: Emulators) -> list[tuple[str, str, str]]:
    """(token, title, trackingId) of every push the FCM emulator accepted."""
    out = []
    for r in emulators.fcm_records():
        body = r.get("request", {}).get("body", {})
        if not r.get("path", "").endswith(":send") or r.get("status") != 200 \
                or body.get("validate_only"):
            continue
        data = body["message"].get("data", {})
        out.append((body["message"]["token"], data.get("title", ""), data.get("trackingId", "")))
    return out


def _wait(predicate: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_issue_example_runs_live(service: Service, emulators: Emulators,
                                     tmp_path: Path) -> None:
    service.start()
    org = service.cli("orgs", "create", "--name", "Contoso", "--json")
    admin = {"authorization": f"Bearer {org['admin_token']}"}
    document = emulators.app_document()
    document["settings"] = {"dry_run_on_register": False}
    (tmp_path / "app.json").write_text(json.dumps(document))
    app = service.cli("apps", "create", "--org", org["id"], "--config",
                      str(tmp_path / "app.json"), "--json")
    # Gold opener (two devices), gold, silver clicker, silver; bronze is outside the segment.
    names = ["gold_opener", "gold", "silver_clicker", "silver", "bronze"]
    tiers = ["gold", "gold", "silver", "silver", "bronze"]
    people = {name: str(uuid.uuid4()) for name in names}
    (tmp_path / "people.csv").write_text("id,email,first_name,tier\n" + "".join(
        f"{people[n]},{n}@contoso.com,{n},{tier}\n" for n, tier in zip(names, tiers,
                                                                        strict=True)))
    service.cli("contacts", "import", "--org", org["id"], str(tmp_path / "people.csv"),
                "--json")
    devices = [(n, f"token-{n}-{i}:APA91b" + "x" * 120) for n in names
               for i in range(2 if n == "gold_opener" else 1)]
    owner = {tok: n for n, tok in devices}
    base = f"{service.url}/v1/orgs/{org['id']}"
    with httpx.Client(timeout=30, headers=admin) as http:
        r = http.post(f"{service.url}/api/v1.0/orgs/{org['id']}/pushdeviceregistration/"
                      "devices/batch",
                      json=[{"MobileAppId": app["id"], "UserId": people[n],
                             "ApiToken": app["api_token"], "FcmDeviceToken": tok}
                            for n, tok in devices])
        assert r.status_code == 202, r.text
        _wait(lambda: len(http.get(f"{base}/apps/{app['id']}/devices").json()["items"])
              == len(devices), "the devices", 60)

        def create(path: str, body: dict[str, Any]) -> str:
            r = http.post(f"{base}{path}", json=body)
            assert r.status_code == 201, r.text
            return str(r.json()["id"])

        segment = create("/segments", {"name": "Gold and silver",
                                       "filter": "tier eq 'gold' or tier eq 'silver'"})
        messages = {step: create("/messages", {
            "name": step, "app_id": app["id"], "category": "commercial",
            "title": f"{step} {{{{FirstName}}}}", "body": "Hi",
            "placeholders": {"FirstName": {"source": "audience", "field": "first_name"}}})
            for step in ("hello", "nudge", "perks")}
        text = EXAMPLE
        for key, value in (("app id", app["id"]), ("segment id", segment),
                           ("message id", messages["hello"]),
                           ("second message id", messages["nudge"]),
                           ("third message id", messages["perks"])):
            text = text.replace(f"<{key}>", value)
        journey = create("/journeys", json.loads(text))
        assert http.post(f"{base}/journeys/{journey}/start").status_code == 200

        def hellos() -> list[tuple[str, str, str]]:
            return [p for p in _pushes(emulators) if p[1].startswith("hello ")]

        _wait(lambda: len(hellos()) >= 5, "the hello pushes", 30)
        events = f"{service.url}/api/v1.0/orgs/{org['id']}/pushdatareceiver/events"
        for token, _, tracking_id in hellos():
            status = {"gold_opener": 1, "silver_clicker": 0}.get(owner[token])
            if status is not None and token.endswith("-0:APA91b" + "x" * 120):
                r = httpx.post(events, timeout=5, json={
                    "TrackingId": tracking_id, "DeviceToken": token,
                    "PushNotificationStatus": status})
                assert r.status_code == 202, r.text

        def report() -> dict[str, Any]:
            got = http.get(f"{base}/journeys/{journey}/report")
            assert got.status_code == 200, got.text
            out: dict[str, Any] = got.json()
            return out

        _wait(lambda: report()["people"] == 4 and report()["inside"] == 0,
              "everyone through the journey", 60)
        time.sleep(1.0)  # nothing more arrives later
        got = Counter((owner[token], title.split()[0]) for token, title, _ in _pushes(emulators))
        assert got == Counter({
            ("gold_opener", "hello"): 2, ("gold", "hello"): 1, ("silver_clicker", "hello"): 1,
            ("silver", "hello"): 1, ("gold_opener", "perks"): 2, ("gold", "nudge"): 1,
            ("silver", "nudge"): 1}), got
        assert len({tid for _, title, tid in _pushes(emulators)
                    if title.startswith("hello ")}) == 1  # one send for the segment's page
        steps = {s["id"]: s for s in report()["steps"]}
        assert [steps[s]["inflow"] for s in ("hello", "opened", "nudge", "tier", "perks")] == [
            4, 4, 2, 2, 1]
        for s in steps.values():
            assert s["inflow"] == s["processing"] + s["processed"] + s["exit"], s
        assert steps["hello"]["channel"]["sent"] == {"people": 4, "devices": 5}
