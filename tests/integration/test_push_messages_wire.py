"""A personalised send at the wire: Clarion (API and worker) against the APNs, FCM and Web Push
emulators over real sockets on 127.0.0.1 (the demo's stage), each person receiving their own
text on each of their devices."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from clarion.demo.stage import stage
from clarion.emulators.devices import AppBehaviour, new_apns_token, new_fcm_token

pytestmark = pytest.mark.integration

DEADLINE_SECONDS = 60.0


async def _until(check: Any, what: str) -> Any:
    """Poll ``check`` (an async callable answering a value or None) until it answers: the
    service offers no event to wait on from outside, only its read API."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        got = await check()
        if got is not None:
            return got
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_two_people_get_their_own_text_on_every_platform() -> None:
    quiet = AppBehaviour(delivered=0, opened=0, clicked=0)
    async with stage(quiet) as st:
        c = st.container
        org = await c.orgs.create("Contoso")
        created = await c.apps.create(org.id, st.app_document("Contoso app"))
        app, api_token = created.app, created.api_token
        info = await c.apps.developer_info(org.id, app.id)
        ann = await c.people.create(org.id, {"kind": "contact", "first_name": "Ann",
                                             "attributes": {"tier": "gold"}})
        bob = await c.people.create(org.id, {"kind": "contact", "first_name": "Bob"})
        apns_token, fcm_token = new_apns_token(), new_fcm_token()
        subscription = st.webpush.subscribe(info.web_vapid_public_key or "")
        admin = {"authorization": f"Bearer {org.admin_token}"}
        base = f"{st.url}/api/v1.0/orgs/{org.id}/pushdeviceregistration/devices"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            for person, token in ((ann.id, {"ApnsDeviceToken": apns_token}),
                                  (ann.id, {"WebPushSubscription": subscription}),
                                  (bob.id, {"FcmDeviceToken": fcm_token})):
                async with http.post(base, json={"MobileAppId": app.id, "UserId": person,
                                                 "ApiToken": api_token, **token}) as r:
                    assert r.status == 202, await r.text()

            async def registered() -> bool | None:
                async with http.get(f"{st.url}/v1/orgs/{org.id}/apps/{app.id}/devices",
                                    headers=admin) as r:
                    body = await r.json()
                items = body["items"] if isinstance(body, dict) else body
                return True if len(items) == 3 else None

            await _until(registered, "the three devices to be registered")
            document = {
                "name": "Welcome", "app_id": app.id, "category": "commercial",
                "title": "Welcome, {{FirstName}}",
                "body": "{{#if Tier}}Your {{Tier}} perks are ready{{else}}Glad you are "
                        "here{{/if}}",
                "on_click": {"action": "open_url", "url": "https://contoso.example/welcome"},
                "placeholders": {
                    "FirstName": {"source": "audience", "field": "first_name",
                                  "default": "there"},
                    "Tier": {"source": "audience", "field": "tier"}}}
            async with http.post(f"{st.url}/v1/orgs/{org.id}/messages", json=document,
                                 headers=admin) as r:
                assert r.status == 201, await r.text()
                message_id = (await r.json())["id"]
            async with http.post(f"{st.url}/v1/orgs/{org.id}/sends", headers=admin,
                                 json={"message_id": message_id,
                                       "user_ids": [ann.id, bob.id]}) as r:
                assert r.status == 202, await r.text()
                send_id = (await r.json())["id"]

            async def done() -> dict[str, Any] | None:
                async with http.get(f"{st.url}/v1/orgs/{org.id}/sends/{send_id}",
                                    headers=admin) as r:
                    got: dict[str, Any] = await r.json()
                return got if got["state"] == "done" else None

            outcome = await _until(done, "the send to be done")
        assert outcome["counts"] == {"accepted": 3}, outcome
        [ios] = [rec.payload for rec in st.apns.received
                 if rec.token == apns_token and "alert" in rec.payload.get("aps", {})]
        assert ios["aps"]["alert"] == {"title": "Welcome, Ann",
                                       "body": "Your gold perks are ready"}
        assert ios["data"]["trackingId"] == send_id
        [web] = [json.loads(m.plaintext) for m in st.webpush.messages_for(
            subscription["endpoint"]) if m.plaintext and b"trackingId" in m.plaintext]
        assert (web["title"], web["body"]) == ("Welcome, Ann", "Your gold perks are ready")
        [android] = [d["message"]["data"] for d in st.fcm.delivered
                     if d["message"].get("token") == fcm_token]
        assert (android["title"], android["body"]) == ("Welcome, Bob", "Glad you are here")
        assert android["originalLink"] == "https://contoso.example/welcome"
