"""A provider failure that stalls a send is visible where the user looks: `clarion send --wait`
names the cause with its count, and the server log says it once (issue 13).

The scenario of the issue, as a user meets it: Clarion trusts the APNs emulator's CA; the
emulator is restarted and makes a new CA; every iOS delivery now fails its TLS handshake.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import CLARION, Emulators, Service, wait_port
from tests.factories import apns_token

pytestmark = pytest.mark.e2e


def _restart_apns(emulators: Emulators) -> None:
    """Stop the APNs emulator and start it again as it was started: it makes a new CA."""
    old = emulators.procs[0]
    old.terminate()
    old.wait(10)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    emulators.procs[0] = subprocess.Popen(old.args, cwd=emulators.home, env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(emulators.apns_port, emulators.procs[0], "the APNs emulator")


def _setup(service: Service, emulators: Emulators, tmp_path: Path) -> dict[str, Any]:
    org = service.cli("orgs", "create", "--name", "Contoso", "--json")
    config = tmp_path / "app.json"
    config.write_text(json.dumps(emulators.app_document()))
    app = service.cli("apps", "create", "--org", org["id"], "--config", str(config), "--json")
    person = service.cli("contacts", "add", "--org", org["id"], "--email", "ada@contoso.com",
                         "--json")
    r = httpx.post(f"{service.url}/api/v1.0/orgs/{org['id']}/pushdeviceregistration/devices",
                   headers={"x-ms-track-registration": "true"},
                   json={"MobileAppId": app["id"], "UserId": person["id"],
                         "ApiToken": app["api_token"], "ApnsDeviceToken": apns_token()})
    assert r.status_code == 202, r.text
    request_id = r.json()["RegistrationRequestId"]
    auth = {"authorization": f"Bearer {org['admin_token']}"}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the dry run went through the emulator
        got = httpx.get(f"{service.url}/v1/orgs/{org['id']}/registrations/{request_id}",
                        headers=auth).json()
        if got["status"] != "Pending":
            break
        time.sleep(0.2)
    assert got["status"] == "Success", got
    return {"org": org["id"], "app": app["id"], "person": person["id"], "auth": auth}


def test_send_wait_names_the_tls_failure_and_the_log_says_it_once(
        service: Service, emulators: Emulators, tmp_path: Path) -> None:
    service.start()
    ids = _setup(service, emulators, tmp_path)
    _restart_apns(emulators)

    out = subprocess.run(
        [*CLARION, "send", "--org", ids["org"], "--app", ids["app"], "--user", ids["person"],
         "--title", "Hello", "--wait", "--timeout", "6"],
        cwd=service.home, env=service.env, capture_output=True, timeout=60, check=False)
    lines = [line for line in out.stderr.decode().splitlines() if line.strip()]
    assert out.returncode == 1, out.stderr.decode()
    error = next(line for line in lines if line.startswith("error: "))
    assert "is not done after 6 s: 1 delivery waiting to retry: ios TLSError (" in error
    assert "certificate is not trusted" in error and "CLARION_CA_FILE" in error
    assert "is a worker running" not in error  # the worker ran: it is not the question
    assert lines[lines.index(error) + 1].startswith("fix: Fix the cause above")

    # The same cause over several attempts and a second send: one WARNING in the server log.
    send_id = error.split()[2]
    second = httpx.post(f"{service.url}/v1/orgs/{ids['org']}/sends", headers=ids["auth"],
                        json={"app_id": ids["app"], "user_id": ids["person"],
                              "message": {"title": "Again"}})
    assert second.status_code == 202
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        got = httpx.get(f"{service.url}/v1/orgs/{ids['org']}/sends/{second.json()['id']}",
                        headers=ids["auth"]).json()
        if got["waiting"]:
            break
        time.sleep(0.2)
    assert [w["reason"] for w in got["waiting"]] == ["TLSError"]
    first = httpx.get(f"{service.url}/v1/orgs/{ids['org']}/sends/{send_id}",
                      headers=ids["auth"]).json()
    assert first["deliveries"][0]["attempts"] >= 2  # retried meanwhile
    warnings = [line for line in service.log().splitlines()
                if " WARNING " in line and "TLSError" in line]
    assert len(warnings) == 1, service.log()
    assert f"1 ios delivery of app {ids['app']} waits for a retry: TLSError" in warnings[0]
