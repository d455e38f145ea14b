"""Compliance live, against the emulators, with `clarion serve` started as a user starts it:
a send across a quiet window arrives when the window ends (none before), a person over the
frequency cap is blocked at release, and an opted-out person receives nothing."""

from __future__ import annotations

import json
import time
import uuid
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


def test_a_send_across_a_quiet_window_a_cap_and_an_opt_out(
        service: Service, emulators: Emulators, tmp_path: Path) -> None:
    service.start()
    org = service.cli("orgs", "create", "--name", "Contoso", "--json")
    admin = {"authorization": f"Bearer {org['admin_token']}"}
    document = emulators.app_document()
    document["settings"] = {"dry_run_on_register": False}
    (tmp_path / "app.json").write_text(json.dumps(document))
    app = service.cli("apps", "create", "--org", org["id"], "--config",
                      str(tmp_path / "app.json"), "--json")
    held, opted_out, capped = (str(uuid.uuid4()) for _ in range(3))
    tokens = {p: f"token-{p}:APA91b" + "x" * 120 for p in (held, opted_out, capped)}
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

        def send(people: list[str]) -> str:
            r = http.post(f"{base}/sends", json={"app_id": app["id"], "user_ids": people,
                                                  "message": {"title": "Hi", "body": "x"}})
            assert r.status_code == 202, r.text
            return str(r.json()["id"])

        # Caps count pushes from the moment they are set: set, then one push to `capped`.
        assert http.put(f"{base}/frequency-caps",
                        json={"push": {"per_24h": 1, "per_7d": None, "per_30d": None}}
                        ).status_code == 200
        first = send([capped])
        _wait(lambda: len(_to(emulators, tokens[capped])) == 1, "the first push", 60)
        assert http.put(f"{base}/apps/{app['id']}/people/{opted_out}/consent",
                        json={"opted_in": False, "source": "app settings"}).status_code == 200
        # A quiet window from this minute to the next minute boundary at least 30 s away.
        now = datetime.now(UTC)
        end = (now + timedelta(minutes=1 if now.second < 30 else 2)).replace(second=0,
                                                                             microsecond=0)
        window = {"start": f"{now:%H:%M}", "end": f"{end:%H:%M}"}
        r = http.put(f"{base}/quiet-times", json={
            "name": "Now", "general": {"commercial": {"windows": [window]}}})
        assert r.status_code == 200, r.text
        second = send([held, opted_out, capped])
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
