"""Without CLARION_PUBLIC_URL, every URL Clarion hands out names the port actually served:
the banner, the developer information, OData's @odata.context and the tracked links in
notifications (`clarion serve --port N`, nothing else set)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Emulators, Service
from tests.e2e.test_cij_contract import setup_org, wait_status

pytestmark = pytest.mark.e2e


def test_urls_follow_the_port_served(service: Service, tmp_path: Path,
                                     emulators: Emulators) -> None:
    del service.env["CLARION_PUBLIC_URL"]
    assert service.port != 8000
    service.start()
    assert f"API docs at {service.url}/docs" in service.log()
    ids = setup_org(service, tmp_path, emulators)
    admin = {"Authorization": f"Bearer {ids['admin']}"}
    info = httpx.get(f"{service.url}/v1/orgs/{ids['org']}/apps/{ids['app']}/developer-info",
                     headers=admin, timeout=5).json()
    assert info["public_url"] == service.url
    assert all(url.startswith(f"{service.url}/") for url in info["endpoints"].values())
    person = httpx.post(f"{service.url}/v1/orgs/{ids['org']}/people", headers=admin,
                        json={"email": "ada@contoso.com"}, timeout=5).json()
    odata = httpx.get(f"{service.url}/api/data/v9.0/contacts", headers=admin, timeout=5,
                      params={"$filter": "emailaddress1 eq 'ada@contoso.com'"}).json()
    assert odata["@odata.context"].startswith(f"{service.url}/api/data/v9.0/")
    # A browser subscribed at the Web Push emulator receives a tracked link on this port.
    subscription = emulators.subscribe(info["web_vapid_public_key"])
    base = f"{service.url}/api/v1.0/orgs/{ids['org']}/pushdeviceregistration"
    r = httpx.post(f"{base}/devices", timeout=5, headers={"x-ms-track-registration": "true"},
                   json={"MobileAppId": ids["app"], "UserId": person["id"],
                         "ApiToken": ids["api_token"], "WebPushSubscription": subscription})
    assert r.status_code == 202, r.text
    wait_status(f"{base}/devices/status/", {
        "RegistrationRequestIds": [r.json()["RegistrationRequestId"]],
        "MobileAppId": ids["app"], "ApiToken": ids["api_token"]}, "Success")
    sent = httpx.post(f"{service.url}/v1/orgs/{ids['org']}/sends", headers=admin, timeout=5,
                      json={"app_id": ids["app"], "user_id": person["id"], "message": {
                          "title": "Hi", "body": "Ada", "link": "https://contoso.com/w"}})
    assert sent.status_code == 202, sent.text
    deadline = time.monotonic() + 30
    pushed: list[dict[str, object]] = []
    while time.monotonic() < deadline and not pushed:
        pushed = [r["payload"] for r in emulators.records(emulators.webpush_log)
                  if r.get("status") == 201 and isinstance(r.get("payload"), dict)
                  and r["payload"].get("trackingId")]
        time.sleep(0.2)
    assert pushed, emulators.records(emulators.webpush_log)
    link = str(pushed[0]["link"])
    assert link.startswith(f"{service.url}/l/"), link
    # ... and that link works: it redirects to the send's link and records a click.
    click = httpx.get(link, timeout=5)
    assert click.status_code == 302
    assert click.headers["location"] == "https://contoso.com/w"
