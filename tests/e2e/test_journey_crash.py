"""SIGKILL `clarion serve` in the middle of a journey (its first pushes are going out), start
it again: everyone still goes through (hello, then nudge after the wait), each person is in
exactly one send per step, and no device gets a push of a step more often than the delivery
path's documented crash bound allows."""

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

PEOPLE = 600
CONCURRENCY, PER_CALL, BATCH = 2, 1, 50  # the crash bound: 2 × 1 × 50 device pushes


def _pushes(emulators: Emulators) -> Counter[tuple[str, str]]:
    """(token, step) -> pushes the FCM emulator accepted (the step is the title's word)."""
    out: Counter[tuple[str, str]] = Counter()
    for r in emulators.fcm_records():
        body = r.get("request", {}).get("body", {})
        if r.get("path", "").endswith(":send") and r.get("status") == 200 \
                and not body.get("validate_only"):
            data = body["message"].get("data", {})
            out[(body["message"]["token"], data.get("title", "").split(" ")[0])] += 1
    return out


def _wait(predicate: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkill_mid_journey_loses_nobody(service: Service, emulators: Emulators,
                                          tmp_path: Path) -> None:
    service.env.update({"CLARION_JOB_LEASE_SECONDS": "5",
                        "CLARION_WORKER_CONCURRENCY": str(CONCURRENCY),
                        "CLARION_DELIVERY_JOBS_PER_CALL": str(PER_CALL),
                        "CLARION_DELIVERY_BATCH_SIZE": str(BATCH)})
    service.start()
    org = service.cli("orgs", "create", "--name", "Contoso", "--json")
    admin = {"authorization": f"Bearer {org['admin_token']}"}
    document = emulators.app_document()
    document["settings"] = {"dry_run_on_register": False}
    (tmp_path / "app.json").write_text(json.dumps(document))
    app = service.cli("apps", "create", "--org", org["id"], "--config",
                      str(tmp_path / "app.json"), "--json")
    people = [str(uuid.uuid4()) for _ in range(PEOPLE)]
    (tmp_path / "people.csv").write_text("id,email,tier\n" + "".join(
        f"{p},u{i}@contoso.com,silver\n" for i, p in enumerate(people)))
    service.cli("contacts", "import", "--org", org["id"], str(tmp_path / "people.csv"),
                "--json")
    tokens = {p: f"token-{p}:APA91b" + "x" * 120 for p in people}
    base = f"{service.url}/v1/orgs/{org['id']}"
    with httpx.Client(timeout=30, headers=admin) as http:
        for i in range(0, PEOPLE, 100):
            r = http.post(f"{service.url}/api/v1.0/orgs/{org['id']}/pushdeviceregistration/"
                          "devices/batch",
                          json=[{"MobileAppId": app["id"], "UserId": p,
                                 "ApiToken": app["api_token"], "FcmDeviceToken": tokens[p]}
                                for p in people[i:i + 100]])
            assert r.status_code == 202, r.text

        def devices() -> int:
            got = http.get(f"{base}/apps/{app['id']}/devices", params={"limit": 1000})
            return len(got.json()["items"])

        _wait(lambda: devices() == PEOPLE, "the devices", 120)

        def create(path: str, body: dict[str, Any]) -> str:
            r = http.post(f"{base}{path}", json=body)
            assert r.status_code == 201, r.text
            return str(r.json()["id"])

        segment = create("/segments", {"name": "Silver", "filter": "tier eq 'silver'"})
        hello, nudge = (create("/messages", {
            "name": step, "app_id": app["id"], "category": "commercial",
            "title": f"{step} there", "body": "Hi"}) for step in ("hello", "nudge"))
        journey = create("/journeys", {
            "name": "Crash", "app_id": app["id"],
            "entry": {"type": "segment", "segment_id": segment},
            "steps": [
                {"id": "hello", "type": "push", "message_id": hello},
                {"id": "opened", "type": "wait_for_interaction", "step": "hello",
                 "interaction": "opened", "within": "PT5S", "yes": "end", "no": "nudge"},
                {"id": "nudge", "type": "push", "message_id": nudge}]})
        assert http.post(f"{base}/journeys/{journey}/start").status_code == 200
        _wait(lambda: sum(_pushes(emulators).values()) > 0, "the first pushes", 60)
        service.kill()  # in the middle: hello pushes going out, nobody past the wait yet
        at_kill = sum(_pushes(emulators).values())
        service.start()

        def report() -> dict[str, Any]:
            got = http.get(f"{base}/journeys/{journey}/report")
            assert got.status_code == 200, got.text
            out: dict[str, Any] = got.json()
            return out

        _wait(lambda: report()["inside"] == 0, "everyone through the journey", 120)
        _wait(lambda: sum(n for (_, step), n in _pushes(emulators).items()
                          if step == "nudge") >= PEOPLE, "the nudges", 60)
        time.sleep(1.0)  # nothing more arrives later
        steps = {s["id"]: s for s in report()["steps"]}
        assert report()["people"] == PEOPLE
        assert [steps[s]["inflow"] for s in ("hello", "opened", "nudge")] == [PEOPLE] * 3
        for s in steps.values():
            assert s["inflow"] == s["processing"] + s["processed"] + s["exit"], s
        # Each person is in one send per step (the journey asked once): the channel figures
        # count each person once.
        assert steps["hello"]["channel"]["sent"]["people"] == PEOPLE
        assert steps["nudge"]["channel"]["sent"]["people"] == PEOPLE
    got = _pushes(emulators)
    for step in ("hello", "nudge"):
        assert {tok for (tok, s) in got if s == step} == set(tokens.values()), step
    duplicates = sum(n - 1 for n in got.values())
    assert duplicates <= CONCURRENCY * PER_CALL * BATCH, (duplicates, at_kill)
