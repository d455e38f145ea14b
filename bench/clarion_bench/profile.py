"""Summaries of py-spy ``--format raw`` profiles (collapsed stacks: ``f1;f2;…;fn count``).

py-spy's own outputs are a flame graph or speedscope file; for the report we want plain text:
the share of samples in which a function is on the stack (inclusive) and at the top (self).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _name(frame: str, *, with_line: bool) -> str:
    m = _FRAME.match(frame.strip())
    if m is None:
        return frame.strip()
    where = m["file"]
    if with_line and m["line"]:
        where = f"{where}:{m['line']}"
    return f"{m['func']} ({where})"


# Where a sample's time belongs, by the first marker found on its stack (outermost first).
BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("worker: processing registrations", ("Worker._process",)),
    ("worker: claiming, leases, purge", ("Worker.run", "Worker._claim", "Worker._keep_leases",
                                         "Worker._maybe_purge", "run_scheduler")),
    ("API: group-commit writer task", ("GroupCommitWriter._run",)),
    ("API: Clarion route (parse, token check, submit)", ("cij_registration.py",)),
    ("API: FastAPI/Starlette/uvicorn around it", ("run_asgi", "httptools_impl.py")),
    ("DB driver threads (aiosqlite; incl. idle waits)", ("_connection_worker_thread",)),
    ("other threads", ("Thread._bootstrap",)),
    ("event loop / C code (uvloop, httptools, idle)", ("Runner.run",)),
]


# Leaf frames of threads that are waiting, not working. py-spy's own idle detection does not
# recognise these in this VM, so they are dropped here (a waiting thread costs no CPU).
IDLE_LEAVES = (
    "Condition.wait (threading.py", "Queue.get (queue.py", "_worker (concurrent/futures/thread.py",
    "_connection_worker_thread (aiosqlite/core.py:59)", "Event.wait (threading.py",
    "Thread._wait_for_tstate_lock", "select (selectors.py", "Lock.acquire",
)


def _samples(path: Path) -> list[tuple[str, int]]:
    """(stack, count) of the samples in which a thread was working."""
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        if leaf.startswith(IDLE_LEAVES) or leaf.startswith("thread ("):
            continue
        out.append((stack, int(count)))
    return out


def buckets(path: Path) -> dict[str, float]:
    """Share of working samples per bucket of ``BUCKETS`` (the first that matches)."""
    counts: Counter[str] = Counter()
    total = 0
    for stack, n in _samples(path):
        total += n
        for name, markers in BUCKETS:
            if any(m in stack for m in markers):
                counts[name] += n
                break
        else:
            counts["other"] += n
    return {k: round(100.0 * v / total, 1) for k, v in counts.most_common()} if total else {}


def summarize(path: Path, *, top: int = 25, match: str | None = None) -> dict[str, object]:
    """Inclusive and self shares per function of the working samples (optionally only stacks
    containing ``match``)."""
    inclusive: Counter[str] = Counter()
    selfs: Counter[str] = Counter()
    total = 0
    for stack, n in _samples(path):
        if match is not None and match not in stack:
            continue
        frames = stack.split(";")
        total += n
        for name in {_name(f, with_line=False) for f in frames}:
            inclusive[name] += n
        selfs[_name(frames[-1], with_line=True)] += n
    def pct(c: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100.0 * v / total, 1)) for k, v in c.most_common(top)] if total else []
    return {"samples": total, "buckets_pct": buckets(path), "inclusive_pct": pct(inclusive),
            "self_pct": pct(selfs)}


if __name__ == "__main__":
    import sys

    result = summarize(Path(sys.argv[1]), top=int(sys.argv[2]) if len(sys.argv) > 2 else 40,
                       match=sys.argv[3] if len(sys.argv) > 3 else None)
    print("samples", result["samples"])
    for name, share in result["buckets_pct"].items():  # type: ignore[attr-defined]
        print(f"{share:6.1f}%  [{name}]")
    for title in ("inclusive_pct", "self_pct"):
        print(f"--- {title}")
        for name, share in result[title]:  # type: ignore[attr-defined]
            print(f"{share:6.1f}%  {name}")
