"""SIGKILL `clarion serve` in the middle of the fan-out of a 100,000-person send, restart it:
every person appears in the send's figures exactly once — with a device, one delivery per valid
device; without, "not sent: no valid device" — and no device gets a second delivery row.

The kill is aimed by watching the send's row in the SQLite file (read-only) until fan-out has
committed at least one page and has more to do; the test fails, rather than passing
vacuously, if the kill missed the fan-out."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Emulators, Service

pytestmark = pytest.mark.e2e

PEOPLE = 100_000
ONE_DEVICE = range(0, PEOPLE, 5)  # 20,000 people with one device
TWO_DEVICES = range(1, PEOPLE, 50)  # 2,000 people with two
DEVICES = len(ONE_DEVICE) + 2 * len(TWO_DEVICES)
WITH_DEVICE = len(ONE_DEVICE) + len(TWO_DEVICES)


def _wait(predicate: Any, what: str, timeout: float, every: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def _fanout_progress(db: Path, send_id: str) -> tuple[str, int] | None:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
        row = conn.execute("SELECT state, fanned_out_people FROM sends WHERE id = ?",
                           (send_id,)).fetchone()
    return None if row is None else (str(row[0]), int(row[1]))


def test_sigkill_in_the_middle_of_a_fan_out_counts_every_person_once(
    service: Service, emulators: Emulators, tmp_path: Path
) -> None:
    service.env.update({"CLARION_JOB_LEASE_SECONDS": "5"})
    service.start()
    org = service.cli("orgs", "create", "--name", "Contoso", "--json")
    document = emulators.app_document()
    document["settings"] = {"dry_run_on_register": False, "max_devices_per_person": 10}
    (tmp_path / "app.json").write_text(json.dumps(document))
    app = service.cli("apps", "create", "--org", org["id"], "--config",
                      str(tmp_path / "app.json"), "--json")
    people = [str(uuid.uuid4()) for _ in range(PEOPLE)]
    (tmp_path / "people.csv").write_text(
        "id,email\n" + "".join(f"{p},u{i}@contoso.com\n" for i, p in enumerate(people)))
    service.cli("contacts", "import", "--org", org["id"], str(tmp_path / "people.csv"), "--json")
    registrations = [(people[i], f"fcm-{i}-a") for i in ONE_DEVICE] + [
        (people[i], f"fcm-{i}-{k}") for i in TWO_DEVICES for k in "ab"]
    base = f"{service.url}/api/v1.0/orgs/{org['id']}/pushdeviceregistration/devices/batch"
    admin = {"Authorization": f"Bearer {org['admin_token']}"}
    db = tmp_path / "var" / "clarion.db"
    with httpx.Client(timeout=60) as http:
        for start in range(0, len(registrations), 100):
            r = http.post(base, json=[{"MobileAppId": app["id"], "UserId": person,
                                       "ApiToken": app["api_token"], "FcmDeviceToken": token}
                                      for person, token in registrations[start:start + 100]])
            assert r.status_code == 202, r.text

        def registered() -> bool:
            counts = service.cli("jobs", "counts", "--json")
            return bool(counts.get("queued", 0) == 0 and counts.get("running", 0) == 0)

        _wait(registered, "the registrations", 300)
        r = http.post(f"{service.url}/v1/orgs/{org['id']}/sends", headers=admin, json={
            "app_id": app["id"], "user_ids": people,
            "message": {"title": "Flash sale", "body": "Today only"}})
        assert r.status_code == 202, r.text
        send_id = r.json()["id"]

        def mid_fanout() -> bool:
            progress = _fanout_progress(db, send_id)
            return progress is not None and progress[0] == "fanning_out" and progress[1] > 0

        _wait(mid_fanout, "the first fan-out page", 120, every=0.005)
        service.kill()
        state, done_people = _fanout_progress(db, send_id) or ("missing", 0)
        assert state == "fanning_out" and 0 < done_people < PEOPLE, (
            f"the kill missed the fan-out ({state}, {done_people} people): nothing tested")
        service.start()

        def finished() -> bool:
            got = http.get(f"{service.url}/v1/orgs/{org['id']}/sends/{send_id}",
                           headers=admin, params={"limit": 1}).json()
            return bool(got["state"] == "done")

        _wait(finished, "the send to finish after the restart", 300)
        got = http.get(f"{service.url}/v1/orgs/{org['id']}/sends/{send_id}", headers=admin,
                       params={"limit": 1}).json()
        report = http.get(f"{service.url}/v1/orgs/{org['id']}/reports", headers=admin,
                          params={"scope": "send", "id": send_id}).json()["totals"]
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT person_id, device_id FROM deliveries WHERE send_id = ?",
                            (send_id,)).fetchall()
    print(f"\nkilled after {done_people:,} of {PEOPLE:,} people were fanned out")
    assert len(rows) == len(set(rows)) == DEVICES  # one delivery per device, none twice
    per_person = Counter(person for person, _ in rows)
    assert per_person == Counter({people[i]: 1 for i in ONE_DEVICE}
                                 | {people[i]: 2 for i in TWO_DEVICES})
    assert got["counts"] == {"accepted": DEVICES}
    assert report["inflow"] == PEOPLE  # every person entered the send once
    assert report["sent"] == {"people": WITH_DEVICE, "devices": DEVICES}
    assert report["not_sent"]["people"] == {
        "total": PEOPLE - WITH_DEVICE,
        "by_reason": {"no_valid_device": PEOPLE - WITH_DEVICE}}
