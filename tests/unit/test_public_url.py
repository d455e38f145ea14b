"""The public URL follows the address served unless CLARION_PUBLIC_URL is set, and
`check-config` notices when a set one names this machine on another port."""

from __future__ import annotations

from pathlib import Path

import pytest

from clarion.cli.check import _public_url
from clarion.config import Settings

pytestmark = pytest.mark.unit


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(var_dir=tmp_path, **values)  # type: ignore[arg-type]


def test_unset_it_follows_host_and_port(tmp_path: Path) -> None:
    cfg = settings(tmp_path, port=9100)
    assert cfg.public_url == "http://127.0.0.1:9100"
    assert cfg.public_url_derived
    served = cfg.serving("0.0.0.0", 9200)
    assert served.public_url == "http://127.0.0.1:9200"
    assert (served.host, served.port) == ("0.0.0.0", 9200)
    assert cfg.serving("::1", 9300).public_url == "http://[::1]:9300"


def test_set_it_is_kept_whatever_is_served(tmp_path: Path) -> None:
    cfg = settings(tmp_path, public_url="https://push.contoso.com/")
    assert cfg.public_url == "https://push.contoso.com"
    assert not cfg.public_url_derived
    assert cfg.serving("127.0.0.1", 9000).public_url == "https://push.contoso.com"


def test_check_config_warns_when_the_public_url_names_another_local_port(
        tmp_path: Path) -> None:
    finding = _public_url(settings(tmp_path, public_url="http://127.0.0.1:8000", port=9000))
    assert finding.level == "warn"
    assert "disagrees with the address served, http://127.0.0.1:9000" in finding.note
    same = _public_url(settings(tmp_path, public_url="http://localhost:9000", port=9000))
    assert "disagrees" not in same.note
    derived = _public_url(settings(tmp_path, port=9000))
    assert derived.value == "not set: http://127.0.0.1:9000"
    assert "follows CLARION_HOST and CLARION_PORT" in derived.note
    proxy = _public_url(settings(tmp_path, public_url="https://push.contoso.com", port=9000))
    assert proxy.level == "ok"
    assert "http://127.0.0.1:9000" in proxy.note
