"""`clarion serve` at CLARION_LOG_LEVEL=debug never writes secrets or personal data to its log
(issue 10, item 9): not the API token, the admin token, a person's email, a device token, a
callback's Authorization header nor its URL's query, although every one of them goes through
the database, the provider connections and the callback while the log is at debug."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Emulators, Service
from tests.factories import apns_token

pytestmark = pytest.mark.e2e

CALLBACK_SECRET = "Bearer cb-secret-7f3a9d0e2b6c4a18"


class _Callbacks(BaseHTTPRequestHandler):
    received: list[dict[str, str]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        self.rfile.read(length)
        _Callbacks.received.append(dict(self.headers))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:  # keep the test output clean
        return


@pytest.fixture
def callback_url() -> Iterator[str]:
    _Callbacks.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Callbacks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cij/status?sig=query-secret"
    server.shutdown()
    server.server_close()


def test_debug_logging_prints_no_secret_and_no_personal_data(
    service: Service, emulators: Emulators, tmp_path: Path, callback_url: str
) -> None:
    service.env["CLARION_LOG_LEVEL"] = "debug"
    service.start()
    org = service.cli("orgs", "create", "--name", "Contoso", "--json")
    (tmp_path / "app.json").write_text(json.dumps(emulators.app_document()))
    app = service.cli("apps", "create", "--org", org["id"], "--config",
                      str(tmp_path / "app.json"), "--json")
    admin = {"Authorization": f"Bearer {org['admin_token']}"}
    email = "ada.secret-mailbox@contoso.com"
    person = httpx.post(f"{service.url}/v1/orgs/{org['id']}/people", headers=admin,
                        json={"email": email, "first_name": "Ada"}, timeout=5)
    assert person.status_code == 201, person.text
    device_token = apns_token()
    base = f"{service.url}/api/v1.0/orgs/{org['id']}/pushdeviceregistration"
    r = httpx.post(f"{base}/devices", timeout=5, json={
        "MobileAppId": app["id"], "UserId": person.json()["id"], "ApiToken": app["api_token"],
        "ApnsDeviceToken": device_token},
        headers={"x-ms-track-registration": "true", "x-ms-callback-url": callback_url,
                 "x-ms-callback-url-headers": json.dumps({"Authorization": CALLBACK_SECRET})})
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 30
    while not _Callbacks.received and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _Callbacks.received, "the callback never came:\n" + service.log()
    assert _Callbacks.received[0]["Authorization"] == CALLBACK_SECRET
    found = httpx.get(f"{service.url}/api/data/v9.0/contacts", headers=admin, timeout=5,
                      params={"$filter": f"emailaddress1 eq '{email}'"})
    assert found.json()["value"], found.text
    service.stop()

    log = (service.home / "serve.log").read_text(errors="replace")
    assert " DEBUG " in log  # the log really was at debug
    secrets = {"the API token": app["api_token"], "the admin token": org["admin_token"],
               "the email": email, "the device token": device_token,
               "the callback Authorization": CALLBACK_SECRET.split()[1],
               "the callback URL's query": "query-secret"}
    leaked = {what: [line[:200] for line in log.splitlines() if value in line][:3]
              for what, value in secrets.items() if value in log}
    assert not leaked, f"secrets in the debug log: {leaked}"
