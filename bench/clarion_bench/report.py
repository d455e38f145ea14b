"""Tables of a run's results: Rich for the terminal, Markdown for docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

TARGET_SINGLE = 5000.0
TARGET_BATCH = 50000.0
TARGET_P99_MS = 1000.0


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="ascii").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "kernel": platform.release()}


def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, float | int):
        return f"{value:,.{digits}f}"
    return str(value)


def _log_cells(r: dict[str, Any]) -> list[str]:
    log = r.get("server_log") or {}
    if not log:
        return ["–", "–"]
    asgi, gone = log.get("asgi_500", 0), log.get("client_disconnect", 0)
    cell = f"{asgi:,}" + (f" ({gone:,} client gone)" if gone else "")
    return [cell, f"{log.get('error_records', 0):,}"]


def _per_cpu(rate: float, cpu_pct: float | None) -> float | None:
    """Work per second of server CPU: comparable across runs when other processes steal CPU
    (an overstatement when the server was not CPU-bound)."""
    if not cpu_pct or cpu_pct < 5:
        return None
    return rate / (cpu_pct / 100)


def throughput_rows(results: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    head = ["scenario", "db", "conns", "req/s (202)", "devices/s", "devices per server CPU-s",
            "p50 ms", "p99 ms", "server CPU %", "other on core0 %", "core1 %"]
    rows = []
    for r in results:
        if r.get("kind") != "wrk" or "measured" not in r:
            continue
        m = r["measured"]
        cores = r.get("core_busy_pct", {})
        rows.append([
            r["id"], r["db"], _n(r.get("connections")), _n(m["accepted_per_s"]),
            _n(m["items_per_s"]), _n(_per_cpu(m["items_per_s"], r.get("server_cpu_pct"))),
            _n(m["latency_us"]["p50"] / 1000, 1), _n(m["latency_us"]["p99"] / 1000, 1),
            _n(r.get("server_cpu_pct")), _n(r.get("other_cpu_on_core0_pct")),
            _n(cores.get("cpu1")),
        ])
    return head, rows


def integrity_rows(results: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Nothing lost? 202s counted by wrk (warm-up + measured) against rows in the database."""
    head = ["scenario", "non-202", "socket errors", "202'd devices", "stored", "lost",
            "backlog at end", "drained in s", "worker processed/s after", "never processed",
            "dead jobs", "500s logged", "error logs"]
    rows = []
    for r in results:
        if r.get("kind") != "wrk" or "measured" not in r:
            continue
        m = r["measured"]
        rows.append([
            r["id"], _n(m["non_202"] + r["warmup"]["non_202"]),
            _n(m["socket_errors"] + r["warmup"]["socket_errors"]),
            _n(r.get("accepted_items_total")), _n(r.get("stored")), _n(r.get("lost")),
            _n(r.get("backlog_at_end")),
            _n(r.get("drain_seconds") or (r.get("drain") or {}).get("seconds"), 1),
            _n(r.get("worker_drain_per_s") or (r.get("drain") or {}).get("per_s")),
            _n(r.get("stuck_pending")), _n(r.get("db_final", {}).get("jobs_dead")),
            *_log_cells(r),
        ])
    return head, rows


def latency_rows(results: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    head = ["scenario", "db", "offered/s", "202/s", "202", "unsent", "accept p99 ms",
            "→Success p50 ms", "p95 ms", "p99 ms", "due→Success p99 ms", "no Success in time",
            "failed", "poll p99 ms", "server CPU %", "other on core0 %", "500s logged",
            "error logs"]
    rows = []
    for r in results:
        if r.get("kind") != "latency" or "measured" not in r:
            continue
        m = r["measured"]
        s = m["to_success_ms"]
        rows.append([
            r["id"], r["db"], _n(m["offered_rate"]), _n(m["achieved_rate"]), _n(m["accepted"]),
            _n(m.get("unsent", 0)), _n(m["accept_ms"]["p99"]), _n(s["p50"]), _n(s["p95"]),
            _n(s["p99"]), _n(m["due_to_success_ms"]["p99"]), _n(m["never_success"]),
            _n(sum(m["failed"].values())), _n(m["poll_ms"]["p99"]),
            _n(r.get("server_cpu_pct")), _n(r.get("other_cpu_on_core0_pct")), *_log_cells(r),
        ])
    return head, rows


def _by_id(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in results if "error" not in r}


def targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets (embedded mode) against this run; PostgreSQL shown alongside."""
    by = _by_id(results)
    out: list[dict[str, Any]] = []

    def add(name: str, sid: str, value: float | None, target: float, higher: bool,
            unit: str) -> None:
        if sid not in by or value is None:
            return
        met = value >= target if higher else value <= target
        ratio = value / target if higher else target / value if value else None
        out.append({"target": name, "scenario": sid, "value": value, "goal": target,
                    "unit": unit, "met": met, "share_of_goal": round(ratio, 3) if ratio else None})

    for sid in ("sqlite-single", "pg-single"):
        r = by.get(sid)
        add("single registration ≥ 5,000 accepted/s", sid,
            r["measured"]["accepted_per_s"] if r else None, TARGET_SINGLE, True, "req/s")
    for sid in ("sqlite-batch", "pg-batch"):
        r = by.get(sid)
        add("batch ≥ 50,000 devices/s", sid, r["measured"]["items_per_s"] if r else None,
            TARGET_BATCH, True, "devices/s")
    for sid in ("sqlite-latency", "pg-latency"):
        r = by.get(sid)
        if r is None:
            continue
        m = r["measured"]
        p99 = m["to_success_ms"]["p99"]
        sustained = m["achieved_rate"] >= 0.95 * m["offered_rate"]
        met = p99 is not None and p99 <= TARGET_P99_MS and sustained and not m["never_success"]
        why = []
        if not sustained:
            why.append(f"the server accepted only {m['achieved_rate']:,.0f}/s of the "
                       f"{m['offered_rate']:,.0f}/s offered (due → Success p99 "
                       f"{_n(m['due_to_success_ms']['p99'])} ms)")
        if m["never_success"]:
            why.append(f"{m['never_success']:,} never reached Success")
        out.append({"target": "202 → Success p99 ≤ 1 s at 1,000/s", "scenario": sid,
                    "value": p99, "goal": TARGET_P99_MS, "unit": "ms", "met": met,
                    "share_of_goal": None, "why": "; ".join(why)})
    return out


def _target_rows(ts: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    head = ["target", "scenario", "measured", "met?"]
    rows = []
    for t in ts:
        value = "–" if t["value"] is None else f"{t['value']:,.1f} {t['unit']}"
        verdict = "yes" if t["met"] else "NO"
        if not t["met"] and t["share_of_goal"]:
            verdict += f" ({t['share_of_goal'] * 100:.0f}% of goal)"
        if t.get("why"):
            verdict += f": {t['why']}"
        rows.append([t["target"], t["scenario"], value, verdict])
    return head, rows


def print_tables(console: Console, results: list[dict[str, Any]]) -> None:
    for title, (head, rows) in (("Throughput (wrk, server core 0, client core 1)",
                                 throughput_rows(results)),
                                ("Nothing lost? (202s vs rows in the database)",
                                 integrity_rows(results)),
                                ("Time from 202 to Success (open loop, tracked)",
                                 latency_rows(results)),
                                ("Targets", _target_rows(targets(results)))):
        if not rows:
            continue
        table = Table(title=title, header_style="bold")
        for h in head:
            table.add_column(h, justify="left" if h in ("scenario", "db", "target") else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    failed = [r for r in results if "error" in r]
    for r in failed:
        console.print(f"[red]{r['id']} failed:[/red] {r['error']}")


def markdown(results: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    for title, (head, rows) in (("Throughput", throughput_rows(results)),
                                ("Nothing lost?", integrity_rows(results)),
                                ("Time from 202 to Success", latency_rows(results)),
                                ("Targets", _target_rows(targets(results)))):
        if not rows:
            continue
        parts.append(f"### {title}\n")
        parts.append("| " + " | ".join(head) + " |")
        parts.append("|" + "|".join("---" for _ in head) + "|")
        parts.extend("| " + " | ".join(row) + " |" for row in rows)
        parts.append("")
    return "\n".join(parts)
