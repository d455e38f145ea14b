"""`clarion demo`, run as a user runs it: one JSON summary whose numbers are Clarion's, and
nothing left running or listening afterwards (after --once, and after Ctrl-C)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import CLARION

pytestmark = pytest.mark.e2e


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env["PYTHONWARNINGS"] = "error"
    return env


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _ports(summary: dict[str, Any]) -> list[int]:
    go_on = summary["continue"]
    return [int(go_on["base_url"].rsplit(":", 1)[1]), *go_on["emulators"].values()]


def test_demo_once_json_reports_clarions_figures_and_leaves_nothing(tmp_path: Path) -> None:
    # Every app reports and every link is followed: each figure is then exactly predictable,
    # and only Clarion's own report can have produced it.
    out = subprocess.run(
        [*CLARION, "demo", "--once", "--json", "--people", "40", "--web", "0.5",
         "--delivered", "1", "--opened", "1", "--clicked", "1", "--delay-ms", "100",
         "--dead-tokens", "0.1", "--seed", "7"],
        cwd=tmp_path, env=_env(), capture_output=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr.decode()
    lines = out.stdout.decode().splitlines()
    assert len(lines) == 1, lines  # one JSON object, nothing else on stdout
    summary = json.loads(lines[0])
    assert summary["people"] == 40
    devices = summary["devices"]
    assert devices == summary["registration"]["Success"] > 40  # phones and some browsers
    dead = round(devices * 0.1)
    assert summary["invalid_tokens"] == dead == sum(summary["uninstalled_before_send"].values())
    assert summary["sent"] == devices - dead == summary["send"]["outcomes"]["accepted"]
    assert summary["delivered"] == summary["opened"] == summary["clicked"] == summary["sent"]
    assert summary["send"]["state"] == "done"
    assert set(summary["platforms"]) == {"ios", "android", "web"}
    assert sum(p["sent"] for p in summary["platforms"].values()) == summary["sent"]
    # The welcome journey after the send: everyone entered and went through; those with a
    # live device opened (every app opens here), the others got the reminder's attempt.
    journey = summary["journey"]
    assert (journey["people"], journey["inside"]) == (40, 0)
    steps = {s["id"]: s for s in journey["steps"]}
    assert steps["welcome"]["inflow"] == steps["opened"]["inflow"] == 40
    assert steps["welcome"]["channel"]["opened"]["unique_people"] == 40 - steps["reminder"][
        "inflow"]
    for step in steps.values():
        assert step["inflow"] == step["processing"] + step["processed"] + step["exit"]
    go_on = summary["continue"]
    assert go_on["journey_id"] == journey["journey_id"]
    assert go_on["admin_token"].startswith("clr_adm_")
    assert go_on["api_token"].startswith("clr_app_")
    assert "CLARION_WEBPUSH_ALLOW_PRIVATE=1" in go_on["env"]
    # Nothing left: no port listening, the temporary directory (database, CA) removed, and
    # nothing written where it ran.
    assert not [p for p in _ports(summary) if _listening(p)]
    assert not Path(go_on["cli_env"].split("=", 1)[1]).exists()
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_stops_everything_the_demo_started(tmp_path: Path) -> None:
    proc = subprocess.Popen([*CLARION, "demo", "--json", "--people", "5", "--delay-ms", "0"],
                            cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        summary = json.loads(proc.stdout.readline())  # printed; the demo keeps running
        ports = _ports(summary)
        assert all(_listening(p) for p in ports)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    assert "stopped" in err.decode()
    assert not [p for p in ports if _listening(p)]
    assert not Path(summary["continue"]["cli_env"].split("=", 1)[1]).exists()
