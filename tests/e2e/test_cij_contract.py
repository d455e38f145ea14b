"""Drive a started `clarion serve` with the CIJ contract's exact bodies and headers."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Emulators, Service
from tests.factories import apns_token

pytestmark = pytest.mark.e2e


def setup_org(service: Service, tmp_path: Path, emulators: Emulators) -> dict[str, Any]:
    org = service.cli("orgs", "create", "--name", "Contoso", "--json")
    # Credentials the emulators know, as Apple and Google know the real ones.
    (tmp_path / "app.json").write_text(json.dumps(emulators.app_document()))
    app = service.cli("apps", "create", "--org", org["id"], "--config",
                      str(tmp_path / "app.json"), "--json")
    return {"org": org["id"], "admin": org["admin_token"], "app": app["id"],
            "api_token": app["api_token"]}


def wait_status(url: str, body: dict[str, Any], want: str, timeout: float = 30) -> list[Any]:
    deadline = time.monotonic() + timeout
    got: list[Any] = []
    while time.monotonic() < deadline:
        r = httpx.post(url, json=body, timeout=5)
        assert r.status_code == 200, r.text
        got = r.json()
        if all(g["Status"] == want for g in got):
            return got
        time.sleep(0.2)
    raise AssertionError(f"status never became {want}: {got}")


def test_a_cij_backend_registers_devices_by_changing_only_its_base_url(
    service: Service, tmp_path: Path, emulators: Emulators
) -> None:
    service.start()
    ids = setup_org(service, tmp_path, emulators)
    admin = {"Authorization": f"Bearer {ids['admin']}"}
    person = httpx.post(f"{service.url}/v1/orgs/{ids['org']}/people", headers=admin,
                        json={"email": "ada@contoso.com", "first_name": "Ada"}, timeout=5)
    assert person.status_code == 201, person.text
    # User mapping the CIJ way: OData lookup by email.
    found = httpx.get(f"{service.url}/api/data/v9.0/contacts",
                      params={"$filter": "emailaddress1 eq 'ada@contoso.com'"}, headers=admin,
                      timeout=5).json()["value"]
    user_id = found[0]["contactid"]
    base = f"{service.url}/api/v1.0/orgs/{ids['org']}/pushdeviceregistration"
    # The contract's sample bodies, byte for byte in shape.
    ios = {"MobileAppId": ids["app"], "UserId": user_id, "ApiToken": ids["api_token"],
           "ApnsDeviceToken": apns_token()}
    android = {"MobileAppId": ids["app"], "UserId": user_id, "ApiToken": ids["api_token"],
               "FcmDeviceToken": "dGhpcyBpcyBhbiBGQ00gdG9rZW4:APA91bF" + "x" * 140}
    r = httpx.post(f"{base}/devices", content=json.dumps(ios),
                   headers={"Content-Type": "application/json",
                            "x-ms-track-registration": "true"}, timeout=5)
    assert r.status_code == 202
    single = r.json()["RegistrationRequestId"]
    uuid.UUID(single)
    r = httpx.post(f"{base}/devices/batch", json=[android], timeout=5,
                   headers={"x-ms-track-registration": "true"})
    assert r.status_code == 202
    batch_ids = [x["RegistrationRequestId"] for x in r.json()]
    got = wait_status(f"{base}/devices/status/", {
        "RegistrationRequestIds": [single, *batch_ids], "MobileAppId": ids["app"],
        "ApiToken": ids["api_token"]}, "Success")
    assert [g["RegistrationRequestId"] for g in got] == [single, *batch_ids]
    devices = httpx.get(f"{service.url}/v1/orgs/{ids['org']}/people/{user_id}/devices",
                        headers=admin, timeout=5).json()["items"]
    assert sorted(d["platform"] for d in devices) == ["android", "ios"]
    # Both tokens went through a real dry run: a background push at the APNs emulator,
    # validate_only at the FCM emulator.
    apns = [r for r in emulators.records(emulators.apns_log) if r.get("status") == 200]
    assert [r["token"] for r in apns] == [ios["ApnsDeviceToken"]], apns
    assert apns[0]["headers"]["apns-push-type"] == "background"
    dry = [r["request"] for r in emulators.fcm_records()
           if r["request"].get("body", {}).get("validate_only")]
    assert [r["body"]["message"]["token"] for r in dry] == [android["FcmDeviceToken"]]
    # Cleanup, exactly as the contract's sample.
    r = httpx.post(f"{base}/devices/cleanup", json={
        "MobileAppId": ids["app"], "ApiToken": ids["api_token"], "UserId": user_id}, timeout=5)
    assert r.status_code == 202
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        devices = httpx.get(f"{service.url}/v1/orgs/{ids['org']}/people/{user_id}/devices",
                            headers=admin, timeout=5).json()["items"]
        if not devices:
            break
        time.sleep(0.2)
    assert devices == []
    # A bad request is CIJ's 400, with a message that says what to fix.
    r = httpx.post(f"{base}/devices", json={**ios, "ApiToken": "wrong"}, timeout=5)
    assert r.status_code == 400
    assert "ApiToken" in r.json()["error"]["message"]


def test_an_accepted_registration_survives_a_crash_before_processing(
    service: Service, tmp_path: Path, emulators: Emulators
) -> None:
    service.start("--no-worker")  # accept only: nothing gets processed
    ids = setup_org(service, tmp_path, emulators)
    admin = {"Authorization": f"Bearer {ids['admin']}"}
    person = httpx.post(f"{service.url}/v1/orgs/{ids['org']}/people", headers=admin,
                        json={"email": "bob@contoso.com"}, timeout=5).json()
    base = f"{service.url}/api/v1.0/orgs/{ids['org']}/pushdeviceregistration"
    bodies = [{"MobileAppId": ids["app"], "UserId": person["id"], "ApiToken": ids["api_token"],
               "ApnsDeviceToken": apns_token()} for _ in range(20)]
    r = httpx.post(f"{base}/devices/batch", json=bodies, timeout=5,
                   headers={"x-ms-track-registration": "true"})
    assert r.status_code == 202
    rids = [x["RegistrationRequestId"] for x in r.json()]
    query = {"RegistrationRequestIds": rids, "MobileAppId": ids["app"],
             "ApiToken": ids["api_token"]}
    assert {g["Status"] for g in httpx.post(f"{base}/devices/status/", json=query,
                                            timeout=5).json()} == {"Pending"}
    # Untracked registrations keep no row of their own: they ride in the queued job.
    other = httpx.post(f"{service.url}/v1/orgs/{ids['org']}/people", headers=admin,
                       json={"email": "eve@contoso.com"}, timeout=5).json()
    untracked = [{**b, "UserId": other["id"], "ApnsDeviceToken": apns_token()}
                 for b in bodies[:5]]
    assert httpx.post(f"{base}/devices/batch", json=untracked, timeout=5).status_code == 202
    service.kill()
    service.start()  # with its worker this time
    got = wait_status(f"{base}/devices/status/", query, "Success")
    assert len(got) == 20
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        devices = httpx.get(f"{service.url}/v1/orgs/{ids['org']}/people/{other['id']}/devices",
                            headers=admin, timeout=5).json()["items"]
        if len(devices) == 5:
            break
        time.sleep(0.2)
    assert sorted(d["token"] for d in devices) == sorted(b["ApnsDeviceToken"] for b in untracked)


def test_accepted_interaction_reports_survive_a_crash_before_they_are_recorded(
    service: Service, tmp_path: Path, emulators: Emulators
) -> None:
    service.start()
    ids = setup_org(service, tmp_path, emulators)
    admin = {"Authorization": f"Bearer {ids['admin']}"}
    org_url = f"{service.url}/v1/orgs/{ids['org']}"
    people = [httpx.post(f"{org_url}/people", headers=admin, timeout=5,
                         json={"email": f"p{i}@contoso.com"}).json()["id"] for i in range(5)]
    tokens = [f"fcm-report-{i}" for i in range(5)]
    base = f"{service.url}/api/v1.0/orgs/{ids['org']}/pushdeviceregistration"
    r = httpx.post(f"{base}/devices/batch", timeout=5, headers={"x-ms-track-registration": "true"},
                   json=[{"MobileAppId": ids["app"], "UserId": p, "ApiToken": ids["api_token"],
                          "FcmDeviceToken": tok} for p, tok in zip(people, tokens, strict=True)])
    assert r.status_code == 202
    wait_status(f"{base}/devices/status/", {
        "RegistrationRequestIds": [x["RegistrationRequestId"] for x in r.json()],
        "MobileAppId": ids["app"], "ApiToken": ids["api_token"]}, "Success")
    send = httpx.post(f"{org_url}/sends", headers=admin, timeout=5, json={
        "app_id": ids["app"], "user_ids": people, "message": {"title": "Hi", "body": "there"}})
    assert send.status_code == 202, send.text
    send_id = send.json()["id"]
    deadline = time.monotonic() + 30
    while httpx.get(f"{org_url}/sends/{send_id}", headers=admin,
                    timeout=5).json()["state"] != "done":
        assert time.monotonic() < deadline, "the send did not finish"
        time.sleep(0.2)
    service.stop()

    service.start("--no-worker")  # accept only: nothing gets recorded
    events = f"{service.url}/api/v1.0/orgs/{ids['org']}/pushdatareceiver/events"
    for tok in tokens:
        for status in ("Delivered", 1):
            r = httpx.post(events, timeout=5, json={
                "TrackingId": send_id, "DeviceToken": tok, "PushNotificationStatus": status})
            assert r.status_code == 202, r.text
    report_url = f"{org_url}/reports"
    query = {"scope": "send", "id": send_id}

    def opened() -> dict[str, int]:
        got = httpx.get(report_url, headers=admin, params=query, timeout=5)
        assert got.status_code == 200, got.text
        return dict(got.json()["totals"]["opened"])

    assert opened()["events"] == 0  # accepted, not recorded yet
    service.kill()
    service.start()  # with its worker: the queued reports are recorded, once
    deadline = time.monotonic() + 30
    while opened()["events"] < 5:
        assert time.monotonic() < deadline, f"reports never recorded: {opened()}"
        time.sleep(0.2)
    time.sleep(1.0)  # nothing more arrives later: each report was recorded exactly once
    totals = httpx.get(report_url, headers=admin, params=query, timeout=5).json()["totals"]
    assert totals["opened"] == {"events": 5, "unique_devices": 5, "unique_people": 5}
    assert totals["delivered"]["events"] == 5
