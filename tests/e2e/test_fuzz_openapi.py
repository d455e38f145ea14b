"""Fuzz every operation of the OpenAPI schema against a started service: never a 5xx.

The org id in paths is the real one and the admin token is sent, so generated requests get past
authentication and reach the validation and service code; bodies, queries and other path
parameters are whatever schemathesis generates (valid and invalid).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.e2e.conftest import Service, free_port
from tests.factories import app_document

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import os

    home: Path = tmp_path_factory.mktemp("fuzz")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    # Provider URLs on a closed loopback port: whatever the fuzzer does, nothing leaves 127/8.
    env.update({"CLARION_FCM_URL": "http://127.0.0.1:9", "CLARION_APNS_URL": "https://127.0.0.1:9",
                "CLARION_VAR_DIR": str(home / "var"), "CLARION_WEBHOOK_ALLOW_PRIVATE": "0",
                "CLARION_LOG_LEVEL": "warning", "PYTHONWARNINGS": "ignore"})
    svc = Service(home, env)
    svc.port = free_port()
    svc.url = f"http://127.0.0.1:{svc.port}"
    svc.start()
    try:
        org = svc.cli("orgs", "create", "--name", "Fuzz", "--json")
        (home / "app.json").write_text(json.dumps(app_document()))
        app = svc.cli("apps", "create", "--org", org["id"], "--config", str(home / "app.json"),
                      "--json")
        yield {"service": svc, "org": org["id"], "admin": org["admin_token"], "app": app["id"]}
    finally:
        svc.stop()
        log = svc.log()
        assert "Traceback" not in log, log


def test_no_request_makes_the_service_answer_5xx(live: dict[str, Any]) -> None:
    base = live["service"].url
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    seen: dict[int, int] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            params = case.path_parameters or {}
            if "org_id" in params:
                params["org_id"] = live["org"]
            if "app_id" in params:
                params["app_id"] = live["app"]
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {live['admin']}"}
            response = case.call(base_url=base, timeout=10)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> "
                                f"{response.status_code}: {response.text[:300]}")

        run()
    print("status codes seen:", dict(sorted(seen.items())), "operations:", operations)
    assert operations >= 15
    assert any(200 <= code < 300 for code in seen), seen
    assert not failures, "\n".join(failures[:20])
