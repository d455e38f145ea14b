"""What the demo reports at the end: Clarion's own figures for the send (its report and the
send's per-device outcomes, never the simulators' counters), and what a person needs to go
on by hand against the Clarion and the emulators still running."""

from __future__ import annotations

import time
from typing import Any

from clarion.demo.scenario import World


def summary(world: World) -> dict[str, Any]:
    """One JSON object: ``people``, ``devices``, ``sent``, ``delivered``, ``opened``,
    ``clicked``, ``invalid_tokens`` first (devices, except ``people``), then the detail."""
    assert world.report is not None
    assert world.send is not None
    t = world.report.totals
    not_sent = {reason: n for reason, n in t.not_sent_devices.by_reason.items() if n}
    return {
        "people": t.inflow,
        "devices": t.targeted_devices,
        "sent": t.sent_devices,
        "delivered": t.delivered.unique_devices,
        "opened": t.opened.unique_devices,
        "clicked": t.clicked.unique_devices,
        "invalid_tokens": t.not_sent_devices.by_reason.get("invalid_token", 0),
        "not_sent": not_sent,
        "people_reached": t.sent_people,
        "opened_people": t.opened.unique_people,
        "clicked_people": t.clicked.unique_people,
        "rates": t.rates.as_dict(),
        "platforms": {p: {"devices": f.targeted_devices, "sent": f.sent_devices,
                          "delivered": f.delivered.unique_devices,
                          "opened": f.opened.unique_devices,
                          "clicked": f.clicked.unique_devices,
                          "invalid_tokens": f.not_sent_devices.by_reason.get("invalid_token", 0)}
                      for p, f in world.report.platforms.items() if f.targeted_devices},
        "send": {"id": world.send_id, "state": world.send.state,
                 "outcomes": dict(world.send.counts)},
        "registration": dict(world.registration),
        "uninstalled_before_send": dict(world.retired),
        "journey": None if world.journey is None else world.journey.as_dict(),
        "seconds": round(time.monotonic() - world.started, 1),
        "continue": continuation(world),
    }


def continuation(world: World) -> dict[str, Any]:
    stage = world.stage
    return {
        "base_url": stage.url, "org_id": world.org_id, "admin_token": world.admin_token,
        "app_id": world.app_id, "api_token": world.api_token, "send_id": world.send_id,
        "journey_id": world.journey_id,
        "emulators": {"apns": stage.apns.port, "fcm": stage.fcm.port,
                      "webpush": stage.webpush.port},
        "env": stage.env_lines(),
        "cli_env": stage.cli_env(),
    }
