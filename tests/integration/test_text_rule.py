"""Every bad byte is a 4xx (issue 10 item 3), on SQLite and PostgreSQL.

Text that reaches the database may hold neither NUL (PostgreSQL's text and jsonb cannot store
it) nor an unpaired surrogate (no UTF-8 encoder can write one): a representative field of every
kind of input — native bodies, nested JSON documents and their keys, CIJ bodies and headers,
path and query parameters, a header stored as is — must answer 400 naming the field, and store
nothing. Deep nesting is a 400, not a RecursionError; a JSON syntax error says where it is.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from clarion.bootstrap import Container
from tests.factories import World, app_document, world

pytestmark = pytest.mark.integration

NUL, SURROGATE = "a\x00b", "a\ud800b"


def raw(document: Any) -> bytes:
    """JSON text as a client writes it: NUL and the surrogate as \\u escapes."""
    return json.dumps(document).encode()


async def attempt(client: httpx.AsyncClient, method: str, path: str, document: Any = None,
                  headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """(status, error object); a crash inside the app is a 500 here, as a server answers it."""
    try:
        r = await client.request(method, path, headers={
            "content-type": "application/json", **(headers or {})},
            content=None if document is None else raw(document))
    except Exception as exc:  # the app raised: what a client sees is a 500
        return 500, {"raised": f"{type(exc).__name__}: {str(exc)[:120]}"}
    try:
        answer = r.json()
    except ValueError:
        answer = {"text": r.text[:120]}
    return r.status_code, answer.get("error", answer) if isinstance(answer, dict) else {}


def _refused(results: list[tuple[str, int, dict[str, Any]]], expected: dict[str, str]) -> None:
    wrong = [(case, status, error) for case, status, error in results
             if status != 400 or error.get("field") != expected[case]]
    assert not wrong, "\n".join(f"{case}: {status} {error}" for case, status, error in wrong)


async def test_unstorable_text_in_native_bodies_is_a_400_naming_the_field(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    auth = {"authorization": f"Bearer {w.admin_token}"}
    org = f"/v1/orgs/{w.org_id}"
    person = w.person_ids[0]
    cases: dict[str, tuple[str, str, Any, str]] = {}
    for label, bad in (("nul", NUL), ("surrogate", SURROGATE)):
        app_doc = app_document()
        del app_doc["ios"], app_doc["android"]
        cases |= {
            f"person first_name {label}": ("POST", f"{org}/people", {"first_name": bad},
                                           "first_name"),
            f"person attribute value {label}": (
                "POST", f"{org}/people", {"attributes": {"note": bad}}, "attributes.note"),
            f"person attribute key {label}": (
                "POST", f"{org}/people", {"attributes": {bad: 1}}, "attributes"),
            f"person update {label}": ("PATCH", f"{org}/people/{person}", {"last_name": bad},
                                       "last_name"),
            f"admin token name {label}": ("POST", f"{org}/admin-tokens", {"name": bad}, "name"),
            f"app name {label}": ("POST", f"{org}/apps", {**app_doc, "name": bad}, "name"),
            f"app vapid subject {label}": (
                "PATCH", f"{org}/apps/{w.app_id}",
                {"web": {"vapid_subject": f"mailto:{bad}@contoso.com"}}, "web.vapid_subject"),
            f"api token name {label}": ("POST", f"{org}/apps/{w.app_id}/tokens", {"name": bad},
                                        "name"),
            f"send title {label}": ("POST", f"{org}/sends", {
                "app_id": w.app_id, "user_id": person, "message": {"title": bad}},
                "message.title"),
            f"send data {label}": ("POST", f"{org}/sends", {
                "app_id": w.app_id, "user_id": person,
                "message": {"title": "t", "data": {"k": bad}}}, "message.data.k"),
        }
    results = []
    for case, (method, path, document, _) in cases.items():
        results.append((case, *await attempt(client, method, path, document, auth)))
    _refused(results, {case: spec[3] for case, spec in cases.items()})
    r = await client.get(f"{org}/people", headers=auth)
    assert len(r.json()["items"]) == len(w.person_ids)  # nothing was stored


def _cij(w: World, user: str, **token: Any) -> dict[str, Any]:
    return {"MobileAppId": w.app_id, "UserId": user, "ApiToken": w.api_token, **token}


async def test_unstorable_text_in_cij_bodies_and_headers_is_a_400_naming_the_field(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    reg = f"/api/v1.0/orgs/{w.org_id}/pushdeviceregistration"
    person = w.person_ids[0]
    good = _cij(w, person, FcmDeviceToken="fcm-token-1")
    track = {"x-ms-track-registration": "true"}
    cases: dict[str, tuple[str, Any, dict[str, str], str]] = {}
    for label, bad in (("nul", NUL), ("surrogate", SURROGATE)):
        cases |= {
            f"UserId {label}": (f"{reg}/devices", _cij(w, bad, FcmDeviceToken="t"), {},
                                "UserId"),
            f"FCM token {label}": (f"{reg}/devices", _cij(w, person, FcmDeviceToken=bad),
                                   track, "FcmDeviceToken"),
            f"batch item {label}": (f"{reg}/devices/batch",
                                    [good, _cij(w, bad, FcmDeviceToken="t")], {}, "[1].UserId"),
            f"cleanup token {label}": (f"{reg}/devices/cleanup", {**_cij(w, person),
                                                                  "DeviceToken": bad}, {},
                                       "DeviceToken"),
            f"report token {label}": (
                f"/api/v1.0/orgs/{w.org_id}/pushdatareceiver/events",
                {"TrackingId": "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "DeviceToken": bad,
                 "PushNotificationStatus": 1}, {}, "DeviceToken"),
            f"callback header value {label}": (
                f"{reg}/devices", good,
                {**track, "x-ms-callback-url": "https://backend.contoso.com/hook",
                 "x-ms-callback-url-headers": json.dumps({"X-Key": bad})},
                "x-ms-callback-url-headers.X-Key"),
        }
    results = []
    for case, (path, document, headers, _) in cases.items():
        results.append((case, *await attempt(client, "POST", path, document, headers)))
    _refused(results, {case: spec[3] for case, spec in cases.items()})


async def test_nul_in_a_url_or_a_stored_header_is_a_400_naming_the_parameter(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    auth = {"authorization": f"Bearer {w.admin_token}"}
    org = f"/v1/orgs/{w.org_id}"
    send = {"app_id": w.app_id, "user_id": w.person_ids[0], "message": {"title": "t"}}
    cases = {
        "app id": ("GET", f"{org}/apps/a%00b", None, auth, "app_id"),
        "token id": ("DELETE", f"{org}/admin-tokens/a%00b", None, auth, "token_id"),
        "cursor": ("GET", f"{org}/people?cursor=a%00b", None, auth, "cursor"),
        "odata filter": ("GET", "/api/data/v9.0/contacts?$filter=firstname%20eq%20%27a%00%27",
                         None, auth, "$filter"),
        "idempotency key": ("POST", f"{org}/sends", send,
                            {**auth, "Idempotency-Key": "a\x00b"}, "Idempotency-Key"),
    }
    results = []
    for case, (method, path, document, headers, _) in cases.items():
        results.append((case, *await attempt(client, method, path, document, headers)))
    _refused(results, {case: spec[4] for case, spec in cases.items()})


async def test_deep_nesting_in_json_strings_is_a_400_not_a_recursion_error(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    deep = "[" * 1000 + "]" * 1000
    status, error = await attempt(
        client, "POST", f"/api/v1.0/orgs/{w.org_id}/pushdeviceregistration/devices",
        _cij(w, w.person_ids[0], FcmDeviceToken="fcm-1"),
        {"x-ms-callback-url": "https://backend.contoso.com/hook",
         "x-ms-callback-url-headers": deep})
    assert status == 400, error
    assert "x-ms-callback-url-headers" in error["message"]
    doc = app_document()
    doc["android"]["service_account"] = deep
    status, error = await attempt(client, "POST", f"/v1/orgs/{w.org_id}/apps", doc,
                                  {"authorization": f"Bearer {w.admin_token}"})
    assert status == 400, error
    assert "android.service_account" in (error.get("field") or error["message"])


async def test_json_syntax_errors_say_line_and_column(
    container: Container, client: httpx.AsyncClient
) -> None:
    w = await world(container)
    bad = b'{"first_name": "Ada",\n "last_name": "Lovelace",}'
    where = "at line 2, column 25"  # the trailing comma
    r = await client.post(f"/v1/orgs/{w.org_id}/people", content=bad,
                          headers={"authorization": f"Bearer {w.admin_token}",
                                   "content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"] == (
        f"the request body is not valid JSON: trailing comma is not allowed {where}")
    for path in (f"/api/v1.0/orgs/{w.org_id}/pushdeviceregistration/devices",
                 f"/api/v1.0/orgs/{w.org_id}/pushdeviceregistration/devices/status/",
                 f"/api/v1.0/orgs/{w.org_id}/pushdatareceiver/events"):
        r = await client.post(path, content=bad)
        assert r.status_code == 400, (path, r.text)
        message = r.json()["error"]["message"]
        assert message.startswith("the request body is not valid JSON: "), (path, message)
        assert message.endswith(where), (path, message)
