"""SIGKILL `clarion serve` in the middle of a 20,000-device send, restart it: every device gets
its notification, and the duplicates stay within the documented bound
(CLARION_WORKER_CONCURRENCY × CLARION_DELIVERY_JOBS_PER_CALL × CLARION_DELIVERY_BATCH_SIZE per
crash, docs/providers.md)."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Emulators, Service

pytestmark = pytest.mark.e2e

DEVICES = 20_000
CONCURRENCY, PER_CALL, BATCH = 4, 4, 500  # the defaults


def _accepted_fcm(emulators: Emulators) -> Counter[str]:
    return Counter(r["request"]["body"]["message"]["token"]
                   for r in emulators.fcm_records()
                   if r.get("path", "").endswith(":send") and r.get("status") == 200
                   and not r["request"]["body"].get("validate_only"))


def _wait(predicate: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkill_in_the_middle_of_a_large_send_loses_nothing(
    service: Service, emulators: Emulators, tmp_path: Path
) -> None:
    service.env.update({"CLARION_JOB_LEASE_SECONDS": "5",
                        "CLARION_WORKER_CONCURRENCY": str(CONCURRENCY),
                        "CLARION_DELIVERY_JOBS_PER_CALL": str(PER_CALL),
                        "CLARION_DELIVERY_BATCH_SIZE": str(BATCH)})
    service.start()
    org = service.cli("orgs", "create", "--name", "Contoso", "--json")
    document = emulators.app_document()
    document["settings"] = {"dry_run_on_register": False}
    (tmp_path / "app.json").write_text(json.dumps(document))
    app = service.cli("apps", "create", "--org", org["id"], "--config",
                      str(tmp_path / "app.json"), "--json")
    people = [str(uuid.uuid4()) for _ in range(DEVICES)]
    (tmp_path / "people.csv").write_text(
        "id,email\n" + "".join(f"{p},u{i}@contoso.com\n" for i, p in enumerate(people)))
    service.cli("contacts", "import", "--org", org["id"], str(tmp_path / "people.csv"), "--json")
    base = f"{service.url}/api/v1.0/orgs/{org['id']}/pushdeviceregistration/devices/batch"
    with httpx.Client(timeout=30) as http:
        for start in range(0, DEVICES, 100):
            r = http.post(base, json=[{"MobileAppId": app["id"], "UserId": p,
                                       "ApiToken": app["api_token"],
                                       "FcmDeviceToken": f"fcm-token-{start + i}"}
                                      for i, p in enumerate(people[start:start + 100])])
            assert r.status_code == 202, r.text
        admin = {"Authorization": f"Bearer {org['admin_token']}"}

        def registered() -> bool:
            counts = service.cli("jobs", "counts", "--json")
            return bool(counts.get("queued", 0) == 0 and counts.get("running", 0) == 0)

        _wait(registered, "the registrations", 120)
        r = http.post(f"{service.url}/v1/orgs/{org['id']}/sends", headers=admin, json={
            "app_id": app["id"], "user_ids": people,
            "message": {"title": "Flash sale", "body": "Today only"}})
        assert r.status_code == 202, r.text
        send_id = r.json()["id"]
        _wait(lambda: sum(_accepted_fcm(emulators).values()) >= 4_000, "a first part", 120)
        service.kill()
        before_restart = sum(_accepted_fcm(emulators).values())
        assert before_restart < DEVICES, "the send finished before the kill: nothing tested"
        service.start()

        def done() -> bool:
            got = http.get(f"{service.url}/v1/orgs/{org['id']}/sends/{send_id}",
                           headers=admin, params={"limit": 1}).json()
            return bool(got["state"] == "done")

        _wait(done, "the send to finish after the restart", 240)
        got = http.get(f"{service.url}/v1/orgs/{org['id']}/sends/{send_id}", headers=admin,
                       params={"limit": 1}).json()
    accepted = _accepted_fcm(emulators)
    assert got["counts"] == {"accepted": DEVICES}
    assert set(accepted) == {f"fcm-token-{i}" for i in range(DEVICES)}  # nobody missed
    duplicates = sum(accepted.values()) - DEVICES
    print(f"\nkilled after {before_restart} accepted; duplicates after restart: {duplicates}")
    assert duplicates <= CONCURRENCY * PER_CALL * BATCH
