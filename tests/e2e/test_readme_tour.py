"""README.md's tour, run as written: the commands are read from the README (the ``sh`` blocks
under "## A 5-minute tour"), not copied here, so the tour cannot drift from the code.

The README's conventions, applied literally:

* a line ``#  <text>`` (two spaces) is what the command above it prints: a JSON sample's
  ``"key": value`` pairs without ``…`` must be in the output (a status that says Pending is
  asked again, as the README tells a reader); any other sample must appear in the output;
* ``export NAME=<value>…`` takes the value from the output above it, at the key where the
  sample shows the same ``<value>…`` (its part up to the last ``_``, ``/`` or ``:``, such as
  ``clr_adm_`` or ``http://127.0.0.1:8000/l/``, must be real; ``6f1c…`` is an example);
  other exports are run by bash;
* a command ending with ``&`` runs in the background, and so does ``make run`` (as the
  ``clarion serve`` it runs once installed): each is ready when it prints ``listening on``;
* everything else runs with bash in a fresh directory, one command after the other, with the
  environment the exports made; it must exit 0.

The tour uses fixed ports (8000, 8443, 8082, 8093): it runs in a network namespace of its
own (``unshare -n``), so that nothing else on this machine can hold them, nor see it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
TOUR = "## A 5-minute tour"
_PAIR = re.compile(r'"([^"]+)":\s*("(?:[^"\\]|\\.)*"|null|true|false|-?\d+(?:\.\d+)?)')


@dataclass
class Command:
    text: str
    samples: list[str] = field(default_factory=list)


def tour_commands(readme: str) -> list[Command]:
    start = readme.index(TOUR)
    end = readme.find("\n## ", start + 1)
    section = readme[start:end if end > 0 else None]
    commands: list[Command] = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        pending: list[str] = []
        heredoc: str | None = None
        for line in block.splitlines():
            if heredoc is not None:
                pending.append(line)
                if line == heredoc:
                    heredoc = None
                    commands.append(Command("\n".join(pending)))
                    pending = []
                continue
            if not pending and line.startswith("#  "):
                commands[-1].samples.append(line[3:])
                continue
            if not pending and (not line.strip() or line.startswith("#")):
                continue
            pending.append(line)
            if (marker := re.search(r"<<'(\w+)'", line)) is not None:
                heredoc = marker.group(1)
                continue
            text = "\n".join(pending)
            if text.endswith("\\") or not _complete(text):
                continue
            commands.append(Command(text))
            pending = []
        assert not pending and heredoc is None, f"unfinished command: {pending}"
    return commands


def _complete(text: str) -> bool:
    try:
        shlex.split(text, comments=True)
    except ValueError:  # an open quote: the command goes on on the next line
        return False
    return True


def _find(value: Any, key: str) -> Any:
    """The first value of ``key`` in ``value``, outer levels first."""
    level = [value]
    while level:
        deeper: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                if key in item:
                    return item[key]
                deeper += item.values()
            elif isinstance(item, list):
                deeper += item
        level = deeper
    raise KeyError(key)


def _values(value: Any, key: str) -> Iterator[Any]:
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key:
                yield v
            yield from _values(v, key)
    elif isinstance(value, list):
        for v in value:
            yield from _values(v, key)


def sample_mismatches(samples: list[str], output: str) -> list[str]:
    """What the samples show that the output does not."""
    wrong: list[str] = []
    for sample in samples:
        if sample.startswith(("{", "[")):
            try:
                got = json.loads(output)
            except ValueError:
                return [f"the sample is JSON, the output is not: {output[:300]!r}"]
            for key, raw in _PAIR.findall(sample):
                if "…" in raw:
                    continue
                want = json.loads(raw)
                if want not in list(_values(got, key)):
                    wrong.append(f'"{key}": {raw} not in the output')
        elif "…" not in sample and sample not in output:
            wrong.append(f"{sample!r} not in the output")
    return wrong


class Namespace:
    """A network namespace of its own with its loopback up: the tour's fixed ports are free
    there whatever else runs on this machine."""

    def __init__(self) -> None:
        assert shutil.which("unshare") and shutil.which("nsenter"), "util-linux is needed"
        self.holder = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", "ip link set lo up && echo up && exec sleep 3600"],
            stdout=subprocess.PIPE)
        assert self.holder.stdout is not None
        assert self.holder.stdout.readline() == b"up\n", "could not make a network namespace"

    def bash(self, script: str) -> list[str]:
        return ["nsenter", f"--net=/proc/{self.holder.pid}/ns/net", "--", "bash", "-c", script]

    def close(self) -> None:
        self.holder.kill()
        self.holder.wait(10)
        if self.holder.stdout is not None:
            self.holder.stdout.close()


class Tour:
    def __init__(self, home: Path, ns: Namespace) -> None:
        self.home = home
        self.ns = ns
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
        # `clarion` is the console script beside this Python (the venv `make` made).
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env['PATH']}"
        self.env["PYTHONUNBUFFERED"] = "1"  # readiness lines arrive when printed
        self.background: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        self.previous: tuple[Command, str] | None = None

    def run(self, command: Command) -> None:
        text = command.text
        if text.startswith("export "):
            self.export(text)
        elif text == "make run":
            self.start("clarion serve", "make-run")
        elif text.endswith("&"):
            self.start(text[:-1].strip(), f"background-{len(self.background)}")
        else:
            self.foreground(command)

    def start(self, script: str, name: str) -> None:
        log = self.home.parent / f"{name}.log"  # beside the tour's directory, not in it
        with log.open("wb") as out:
            proc = subprocess.Popen(self.ns.bash(script), cwd=self.home, env=self.env,
                                    stdout=out, stderr=subprocess.STDOUT)
        self.background.append((script, proc, log))
        deadline = time.monotonic() + 60
        while "listening on" not in log.read_text(errors="replace"):
            assert proc.poll() is None, f"{script} exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"{script} never listened:\n{log.read_text()}"
            time.sleep(0.1)

    def foreground(self, command: Command) -> None:
        deadline = time.monotonic() + 30
        while True:
            out = subprocess.run(self.ns.bash(command.text), cwd=self.home, env=self.env,
                                 capture_output=True, timeout=120, check=False)
            stdout = out.stdout.decode()
            assert out.returncode == 0, (
                f"{command.text}\nexited {out.returncode}:\n{stdout}\n{out.stderr.decode()}"
                f"\n{self.logs()}")
            wrong = sample_mismatches(command.samples, stdout)
            if not wrong:
                break
            # "Pending until …: run it again", as the README says to a reader.
            assert time.monotonic() < deadline, (
                f"{command.text}\nprinted:\n{stdout}\nwhich does not match the README: "
                f"{wrong}\n{self.logs()}")
            time.sleep(0.5)
        self.previous = (command, stdout)

    def export(self, text: str) -> None:
        assignments = shlex.split(text[len("export "):], comments=True)
        if not any(a.endswith("…") for a in assignments):
            names = re.findall(r"(?:^|\s)([A-Za-z_]\w*)=", text[len("export "):])
            shown = " ".join(f'"${{{n}}}"' for n in names)
            out = subprocess.run(["bash", "-c", f"{text}\nprintf '%s\\0' {shown}"],
                                 env=self.env, capture_output=True, check=True)
            self.env.update(zip(names, out.stdout.decode().split("\0")[:-1], strict=True))
            return
        assert self.previous is not None, f"{text}: no output above to take values from"
        command, output = self.previous
        document = json.loads(output)
        for assignment in assignments:
            name, placeholder = assignment.split("=", 1)
            keys = [k for sample in command.samples for k, raw in _PAIR.findall(sample)
                    if raw == json.dumps(placeholder, ensure_ascii=False)]
            assert keys, f"{placeholder} appears in no sample of `{command.text}`"
            value = str(_find(document, keys[0]))
            # What is fixed (up to the last _ / :) must be real; "6f1c…" is an example.
            fixed = re.sub(r"[^_/:]*…$", "", placeholder)
            assert value.startswith(fixed), (name, placeholder, value)
            self.env[name] = value

    def logs(self) -> str:
        return "\n".join(f"--- {script}\n{log.read_text(errors='replace')[-3000:]}"
                         for script, _, log in self.background)

    def stop(self) -> None:
        for _, proc, _ in self.background:
            proc.terminate()
        for _, proc, _ in self.background:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_the_tour_parses_into_the_commands_a_reader_types() -> None:
    commands = tour_commands(README.read_text(encoding="utf-8"))
    texts = [c.text for c in commands]
    assert texts[:3] == [
        "clarion emulator apns --make-key AuthKey.p8 --ca-out apns-ca.pem --log apns.jsonl &",
        "clarion emulator fcm --make-service-account sa.json --project contoso-push &",
        "clarion emulator webpush &"]
    assert texts[3].startswith("cat > clarion.env <<'END'\n") and texts[3].endswith("\nEND")
    assert texts[4] == "make run"
    exports = [t for t in texts if t.startswith("export ")]
    assert len(exports) >= 6
    assert any(c.samples and "Success" in c.samples[0] for c in commands)
    assert sample_mismatches(['{"a": "b…", "c": 1}'], '{"x": {"c": 1}}') == []
    assert sample_mismatches(['{"Status": "Success"}'], '[{"Status": "Pending"}]') != []


def test_the_readme_tour_reaches_a_delivered_notification(tmp_path: Path) -> None:
    home = tmp_path / "clone"
    home.mkdir()
    ns = Namespace()
    tour = Tour(home, ns)
    started = time.monotonic()
    try:
        for command in tour_commands(README.read_text(encoding="utf-8")):
            tour.run(command)
        # The iPhone got the notification: a visible push to its token, with the tracked
        # link on the port served.
        records = [json.loads(line) for line in (home / "apns.jsonl").read_text().splitlines()]
        shown = [r for r in records if r["status"] == 200
                 and r["headers"].get("apns-push-type") == "alert"]
        assert [r["token"] for r in shown] == [tour.env["DEVICE"]]
        assert shown[0]["payload"]["aps"]["alert"] == {"title": "Hello", "body": "Ada"}
        assert tour.env["LINK"].startswith("http://127.0.0.1:8000/l/")
        # ... and Clarion's report counts it delivered to the provider, opened and clicked.
        env = tour.env
        query = (f"curl -s -H 'Authorization: Bearer {env['ADMIN']}' "
                 f"'http://127.0.0.1:8000/v1/orgs/{env['ORG']}/reports?scope=app&id={env['APP']}'")
        deadline = time.monotonic() + 30
        while True:
            totals = json.loads(subprocess.run(ns.bash(query), capture_output=True,
                                               check=True).stdout)["totals"]
            if totals["opened"]["events"] and totals["clicked"]["events"]:
                break
            assert time.monotonic() < deadline, totals
            time.sleep(0.3)
        assert totals["sent"] == {"people": 1, "devices": 1}
        assert totals["opened"]["unique_people"] == totals["clicked"]["unique_people"] == 1
    finally:
        tour.stop()
        ns.close()
    assert time.monotonic() - started < 300  # the README promises five minutes
    # Whatever the tour made in the clone is ignored by git: no key lands in a commit.
    made = sorted(p.name + ("/" if p.is_dir() else "") for p in home.iterdir())
    assert {"AuthKey.p8", "sa.json", "apns-ca.pem", "app.json", "clarion.env", "var/"} <= set(made)
    ignored = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"],
                             cwd=README.parent, input="\n".join(made).encode(),
                             capture_output=True, check=False).stdout.decode().split()
    assert sorted(ignored) == made, f"not ignored: {set(made) - set(ignored)}"
