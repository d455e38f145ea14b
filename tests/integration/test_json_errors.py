"""A JSON syntax error says where it is — line and column — on every route that takes a body
(native API, CIJ endpoints, whatever the Content-Type), and in CLI --config files (issue 13).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from clarion.api.app import create_app
from clarion.bootstrap import build
from clarion.cli.session import console
from clarion.store.migrate import upgrade
from tests.conftest import TEST_SECRET, make_settings

pytestmark = pytest.mark.integration

BROKEN = b'{"name": "Contoso",\n "web": }'
WHERE = "is not valid JSON: unexpected character, expected a JSON value at line 2, column 9"
ANY_ID = "00000000-0000-0000-0000-000000000001"


def test_every_route_with_a_body_locates_a_syntax_error(sqlite_url: str, tmp_path: Path
                                                        ) -> None:
    async def check() -> list[str]:
        await asyncio.to_thread(upgrade, sqlite_url)
        c = build(make_settings(sqlite_url, tmp_path))
        await c.start()
        checked = []
        try:
            org = await c.orgs.create("Contoso")
            app = create_app(c)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                for path, operations in app.openapi()["paths"].items():
                    for method, operation in operations.items():
                        if "requestBody" not in operation:
                            continue
                        url = re.sub(r"\{[^}]*\}", ANY_ID, path.replace("{org_id}", org.id))
                        for content_type in ("application/json", None, "text/plain",
                                             "application/x-www-form-urlencoded"):
                            headers = {"authorization": f"Bearer {org.admin_token}"}
                            if content_type:
                                headers["content-type"] = content_type
                            r = await http.request(method, url, content=BROKEN, headers=headers)
                            assert r.status_code == 400, (method, path, content_type, r.text)
                            message = r.json()["error"]["message"]
                            assert message == f"the request body {WHERE}", (path, message)
                        checked.append(f"{method} {path}")
        finally:
            await c.close()
        return checked

    checked = asyncio.run(check())
    assert "post /v1/orgs/{org_id}/apps" in checked
    assert "post /api/v1.0/orgs/{org_id}/pushdeviceregistration/devices" in checked
    assert len(checked) >= 12, checked


def test_a_cli_config_file_is_located_too(sqlite_url: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from clarion.cli.main import app as cli

    config = tmp_path / "app.json"
    config.write_bytes(BROKEN)
    monkeypatch.setenv("CLARION_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CLARION_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("CLARION_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(console, "width", 80)
    out = CliRunner().invoke(cli, ["apps", "create", "--org", ANY_ID, "--config", str(config)])
    assert out.exit_code == 1
    assert out.output.splitlines()[0] == f"error: --config: {config} {WHERE}"
    assert out.output.splitlines()[1].startswith("fix: Give --config a JSON file")
