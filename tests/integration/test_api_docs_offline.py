"""The API reference pages work on a machine without internet: every URL /docs and /redoc
reference is served by Clarion itself, and answers."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from clarion.store.migrate import upgrade
from tests.conftest import make_settings

pytestmark = pytest.mark.integration

_URL = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")


@pytest.fixture
async def http(sqlite_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    from clarion.api.app import create_app
    from clarion.bootstrap import build

    await asyncio.to_thread(upgrade, sqlite_url)
    container = build(make_settings(sqlite_url, tmp_path))
    await container.start()
    transport = httpx.ASGITransport(app=create_app(container))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    finally:
        await container.close()


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_reference_pages_load_everything_from_clarion(
        http: httpx.AsyncClient, page: str) -> None:
    r = await http.get(page)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    urls = [a or b for a, b in _URL.findall(r.text)]
    assert len(urls) >= 3, r.text  # the script, the stylesheet or favicon, the document
    assert "http://" not in r.text.replace("http://www.w3.org", "")
    assert "https://" not in r.text
    for url in urls:
        assert not urlsplit(url).netloc, f"{page} loads {url} from elsewhere"
        asset = await http.get(urljoin(f"http://test{page}", url))
        assert asset.status_code == 200, url
        assert asset.content, url
    scripts = [u for u in urls if u.endswith(".js")]
    assert scripts and all(u.startswith("/docs-assets/") for u in scripts)


async def test_the_swagger_ui_served_renders_openapi_3_1(http: httpx.AsyncClient) -> None:
    """FastAPI writes OpenAPI 3.1, which only Swagger UI 5 renders (4.x shows an error)."""
    document = (await http.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    bundle = (await http.get("/docs-assets/swagger-ui-bundle.js")).text
    versions = re.findall(r'PACKAGE_VERSION:"(\d+)\.', bundle)
    assert versions and int(versions[0]) >= 5
