"""Where ``clarion serve``'s CPU goes while it delivers: py-spy on a separate run.

py-spy samples the process from outside (``--nonblocking``: the process is never paused, so the
profile barely slows it; the run's throughput is still not reported as a figure). The
collapsed stacks are saved (load them in speedscope or flamegraph.pl) and summarised: per
function, the share of samples where it is on top of the stack (*self*) and anywhere in it
(*inclusive*), plus a coarse split by layer (SQL/driver, HTTP/2 client, TLS, JSON, event loop,
Clarion's own code).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.delivery.clarion_runs import run_scenario
from bench.delivery.sink import Sink
from bench.delivery.world import World

_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")

# Coarse layers, first match wins (checked innermost frame first).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("sqlite / aiosqlite driver", ("aiosqlite", "sqlite3")),
    ("asyncpg driver", ("asyncpg",)),
    ("SQLAlchemy (compile, execute, rows)", ("sqlalchemy",)),
    ("h2 (HTTP/2 framing, HPACK)", ("/h2/", "hpack", "hyperframe")),
    ("aiohttp", ("aiohttp", "yarl", "multidict")),
    ("TLS / sockets / uvloop", ("ssl", "uvloop", "socket", "selectors")),
    ("JSON (orjson/json)", ("orjson", "json/")),
    ("JWT / crypto", ("jwt", "cryptography")),
    ("Clarion providers", ("clarion/providers",)),
    ("Clarion services / store / worker", ("clarion/services", "clarion/store",
                                           "clarion/worker", "clarion/domain")),
    ("Clarion API (FastAPI/uvicorn/pydantic)", ("clarion/api", "fastapi", "starlette",
                                                "uvicorn", "pydantic")),
    ("asyncio", ("asyncio",)),
]


# Parts of the delivery path, by inclusive time (a frame's name and file, as summarised).
KEY_PARTS: list[tuple[str, str]] = [
    ("APNs: open streams and write requests (ApnsConnection.submit)",
     "ApnsConnection.submit (clarion/providers/apns/client.py)"),
    ("APNs: read answers (ApnsConnection.data_received)",
     "ApnsConnection.data_received (clarion/providers/apns/client.py)"),
    ("APNs: build requests (payload.request_parts)",
     "request_parts (clarion/providers/apns/payload.py)"),
    ("delivery: load rows (delivery._load)", "Delivery._load (clarion/services/delivery.py)"),
    ("delivery: build notifications per row (delivery._notification)",
     "Delivery._notification (clarion/services/delivery.py)"),
    ("delivery: write outcomes + counters (delivery._apply)",
     "Delivery._apply (clarion/services/delivery.py)"),
    ("fan-out (FanOut.page)", "FanOut.page (clarion/services/fanout.py)"),
    ("job queue: claim/complete (worker loop)", "Worker._claim"),
    ("API: GET /sends polling (sending.get_send)", "get_send (clarion/services/sending.py)"),
    ("SQLite thread (aiosqlite _connection_worker_thread)",
     "_connection_worker_thread (aiosqlite/core.py)"),
    ("SQLAlchemy execute (main thread side)", "Connection.execute (sqlalchemy/engine/base.py)"),
]


def _short(file: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def _frame(raw: str) -> tuple[str, str]:
    m = _FRAME.match(raw.strip())
    if m is None:
        return raw.strip(), ""
    return m.group("fn"), _short(m.group("file"))


def summarise(collapsed: Path, top: int = 25) -> dict[str, Any]:
    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        n = int(count_s)
        frames = [_frame(f) for f in stack.split(";")]
        # skip the thread/process header frames py-spy adds
        frames = [f for f in frames if f[1]]
        if not frames:
            continue
        total += n
        fn, file = frames[-1]
        self_c[f"{fn} ({file})"] += n
        for key in {f"{f} ({fl})" for f, fl in frames}:
            incl[key] += n
        layer = "other"
        for _fn, fl in reversed(frames):
            hit = next((name for name, marks in LAYERS if any(m in fl for m in marks)), None)
            if hit is not None:
                layer = hit
                break
        layers[layer] += n

    def pct(c: Counter[str], k: int) -> list[tuple[str, float]]:
        return [(name, round(100 * v / total, 1)) for name, v in c.most_common(k)]

    clarion_incl = Counter({k: v for k, v in incl.items() if "clarion/" in k})
    key = Counter({label: sum(v for k, v in incl.items() if k.startswith(prefix))
                   for label, prefix in KEY_PARTS})
    return {"samples": total, "self": pct(self_c, top), "layers": pct(layers, 20),
            "clarion_inclusive": pct(clarion_incl, top),
            "key": [(label, round(100 * key[label] / total, 1)) for label, _ in KEY_PARTS]}


def profile_scenario(*, env: dict[str, str], world: World, sink: Sink, work: Path, people: int,
                     core: int, out_dir: Path, stamp: str, sqlite_db: Path) -> dict[str, Any]:
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).exists():
        return {"error": "py-spy is not installed: .venv/bin/pip install py-spy"}
    collapsed = out_dir / f"delivery-{stamp}-profile.collapsed.txt"
    holder: dict[str, Any] = {}

    def attach(pids: list[int]) -> Callable[[], None]:
        proc = subprocess.Popen(
            [pyspy, "record", "--pid", str(pids[0]), "--rate", "200", "--nonblocking",
             "--format", "raw", "--output", str(collapsed)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        holder["proc"] = proc

        def stop() -> None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

        return stop

    result = run_scenario(name="profile", mode="sqlite", env=env, world=world, sink=sink,
                          plan=[("ios", people)], work=work, serve_cores=str(core),
                          sqlite_db=sqlite_db, attach=attach, launcher=False)
    if not collapsed.exists():
        err = holder["proc"].stderr.read().decode(errors="replace") if "proc" in holder else ""
        return {"error": f"py-spy wrote nothing: {err[-500:]}"}
    summary = summarise(collapsed)
    summary["file"] = str(collapsed.name)
    summary["run"] = {"deliveries": result.deliveries, "sends_per_s": round(result.rate),
                      "note": "sampled at 200 Hz with --nonblocking; not a headline figure"}
    return summary
