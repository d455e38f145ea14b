"""`clarion serve`, `clarion worker` and `clarion migrate` on a database they cannot write stop
at once with exit code 1 and ONE sentence saying what is wrong and how to fix it, never a
traceback (issue 10, item 6).

How the conditions are made real, since these tests run as root and root ignores file modes:

* a read-only file system: the command runs in a mount namespace of its own
  (``unshare -m``) where the var directory is bind-mounted read-only: the kernel answers EROFS,
  to root too;
* file permissions: the command runs without the capabilities that let root ignore them
  (``setpriv`` drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its bounding set), over a
  0400 database in a 0500 directory: the kernel answers EACCES;
* a lock: another process holds ``BEGIN EXCLUSIVE`` on the file for longer than
  CLARION_DB_WRITE_TIMEOUT_SECONDS;
* PostgreSQL down: a port nothing listens on.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import CLARION, free_port
from tests.integration.test_database_unavailable import locked_by_another_process

pytestmark = pytest.mark.e2e

NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
          "--inh-caps=-dac_override,-dac_read_search"]


def read_only_mount(directory: Path) -> list[str]:
    return ["unshare", "-m", "sh", "-c",
            'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"',
            str(directory)]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    out.update({"CLARION_VAR_DIR": str(tmp_path / "var"), "PYTHONWARNINGS": "ignore",
                "CLARION_SECRET_KEY": "test-secret-key-not-for-production",
                "CLARION_DB_WRITE_TIMEOUT_SECONDS": "1", "CLARION_PORT": str(free_port())})
    return out


@pytest.fixture
def migrated(tmp_path: Path, env: dict[str, str]) -> Iterator[Path]:
    """A var directory with an up-to-date database (the command under test needs no write to
    migrate: only the check that it can write stops it)."""
    out = subprocess.run([*CLARION, "migrate"], env=env, cwd=tmp_path, capture_output=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr.decode()
    var = tmp_path / "var"
    yield var
    for path in (var, *var.iterdir()):
        path.chmod(0o700 if path.is_dir() else 0o600)


LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: ")


def run(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    """Run a command that must fail at start; return its one line of error output (serve and
    worker log to standard error too: those lines are log records, nothing else)."""
    out = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, timeout=60, check=False)
    stderr = out.stderr.decode(errors="replace")
    assert out.returncode == 1, f"exit {out.returncode}:\n{stderr}\n{out.stdout.decode()}"
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    said = [line for line in lines if not LOG_RECORD.match(line)]
    assert len(said) == 1, stderr
    assert said[0].startswith("error: cannot start: "), said[0]
    return said[0]


COMMANDS = [["serve"], ["worker"], ["migrate"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_read_only_file_system(command: list[str], migrated: Path, env: dict[str, str],
                                 tmp_path: Path) -> None:
    line = run([*read_only_mount(migrated), *CLARION, *command], env, tmp_path)
    assert f"the SQLite database {migrated / 'clarion.db'} is on a read-only file system" in line
    assert "remount" in line


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_file_permissions(command: list[str], migrated: Path, env: dict[str, str],
                          tmp_path: Path) -> None:
    (migrated / "clarion.db").chmod(0o400)  # owner: read only
    migrated.chmod(0o500)
    line = run([*NO_DAC, *CLARION, *command], env, tmp_path)
    assert f"the SQLite database {migrated / 'clarion.db'} is read-only for user" in line
    assert "writable" in line


def test_a_var_directory_that_cannot_be_created(env: dict[str, str], tmp_path: Path) -> None:
    parent = tmp_path / "locked-parent"
    parent.mkdir(mode=0o555)
    env["CLARION_VAR_DIR"] = str(parent / "var")
    try:
        line = run([*NO_DAC, *CLARION, "serve"], env, tmp_path)
    finally:
        parent.chmod(0o700)
    assert f"{parent / 'var' / 'clarion.db'} cannot be opened or created" in line


def test_a_secret_key_that_cannot_be_written(env: dict[str, str], tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir(mode=0o555)
    del env["CLARION_SECRET_KEY"]
    try:
        line = run([*NO_DAC, *CLARION, "serve"], env, tmp_path)
    finally:
        var.chmod(0o700)
    assert f"the secret key {var / 'secret.key'} cannot be read or created" in line
    assert "CLARION_SECRET_KEY" in line


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_database_locked_longer_than_the_timeout(command: list[str], migrated: Path,
                                                    env: dict[str, str],
                                                    tmp_path: Path) -> None:
    with locked_by_another_process(migrated / "clarion.db"):
        line = run([*CLARION, *command], env, tmp_path)
    assert "stayed locked by another process for 1 s" in line
    assert "CLARION_DB_WRITE_TIMEOUT_SECONDS" in line


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_postgresql_that_does_not_answer(command: list[str], env: dict[str, str],
                                         tmp_path: Path) -> None:
    port = free_port()
    env["CLARION_DATABASE_URL"] = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/clarion"
    line = run([*CLARION, *command], env, tmp_path)
    assert f"cannot connect to PostgreSQL at 127.0.0.1:{port}/clarion" in line

