"""Every CLARION_* setting the code reads is documented in docs/configuration.md, and every
CLARION_* name the docs mention exists (issue 13: five settings were undocumented, and docs
drift when settings are renamed).

"Read by the code": a field of ``clarion.config.Settings`` (pydantic-settings reads it as
CLARION_<FIELD>), or a name ``src/`` reads from the environment itself (``os.environ``,
``os.getenv``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clarion.config import Settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
NAME = r"(?<![A-Za-z0-9_])CLARION_[A-Z0-9_]*[A-Z0-9]"
ENV_READ = re.compile(r"""(?:environ(?:\.get)?\(|environ\[|getenv\()\s*["']"""
                      r"(CLARION_[A-Z0-9_]*[A-Z0-9])")
ROW = re.compile(r"^\| `(" + NAME + ")`", re.MULTILINE)


def settings_read_by_the_code() -> set[str]:
    fields = {f"CLARION_{name.upper()}" for name in Settings.model_fields}
    reads = {m.group(1) for path in (ROOT / "src").rglob("*.py")
             for m in ENV_READ.finditer(path.read_text(encoding="utf-8"))}
    return fields | reads


def test_the_scanner_finds_what_it_should() -> None:
    read = settings_read_by_the_code()
    assert {"CLARION_PORT", "CLARION_EVENTS_RATE_PER_CLIENT", "CLARION_ENV_FILE"} <= read
    assert ROW.findall("| `CLARION_PORT` | `8000` | …\n| x `CLARION_NO` |") == ["CLARION_PORT"]
    assert re.findall(NAME, "BENCH_CLARION_SRC and `CLARION_FOO_` CLARION_*") == ["CLARION_FOO"]


def test_every_setting_the_code_reads_has_a_row_in_configuration_md() -> None:
    rows = ROW.findall((ROOT / "docs" / "configuration.md").read_text(encoding="utf-8"))
    missing = sorted(settings_read_by_the_code() - set(rows))
    assert not missing, f"document these in docs/configuration.md: {missing}"
    assert len(rows) == len(set(rows)), "a setting has two rows"


@pytest.mark.parametrize("doc", sorted(
    [*(ROOT / "docs").glob("*.md"), ROOT / "README.md"], key=lambda p: p.name),
    ids=lambda p: p.name)
def test_every_clarion_name_the_docs_mention_exists(doc: Path) -> None:
    known = settings_read_by_the_code()
    unknown = sorted(set(re.findall(NAME, doc.read_text(encoding="utf-8"))) - known)
    assert not unknown, f"{doc.name} mentions settings the code does not read: {unknown}"
