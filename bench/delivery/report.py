"""The side-by-side table (terminal and Markdown) and the targets, from the results dict."""

from __future__ import annotations

from typing import Any

from rich.table import Table

TARGET_RATE = 5_000.0
TARGET_RATIO = 2.0
TARGET_RSS_GROWTH_MB = 100.0

HEADERS = ["sender", "mode / cores", "notifications", "sends/s", "sends per sender CPU-s",
           "latency p50 / p99 ms (client side)", "sink p99 ms", "peak RSS MB",
           "RSS growth MB", "outcomes"]


def _f(v: Any, digits: int = 0) -> str:
    if v is None:
        return "–"
    if isinstance(v, float | int):
        return f"{v:,.{digits}f}"
    return str(v)


def _ms(v: Any) -> str:
    """nginx logs $request_time in whole milliseconds: 0 means under 1 ms."""
    if v is None:
        return "–"
    return "< 1" if v == 0 else _f(v)


def rows(results: dict[str, Any]) -> list[list[str]]:
    out: list[list[str]] = []
    h = results.get("h2load")
    if h and "sends_per_s" in h:
        out.append(["h2load (C): sink ceiling", "core 1", _f(h["n"]), _f(h["sends_per_s"]),
                    "–", "–", _ms(h.get("sink_request_time_p99_ms")), "–", "–",
                    f"{_f(h.get('ok'))} × 200"])
    for b in results.get("baselines", []):
        if "error" in b:
            out.append([b["kind"], "error", "–", "–", "–", "–", "–", "–", "–",
                        b["error"].strip().splitlines()[-1][:80]])
            continue
        lat = b.get("latency", {})
        name = {"aioapns": "aioapns 4.0 loop", "aiohttp-fcm": "aiohttp FCM v1 loop",
                "firebase-admin": "firebase-admin send_each_async",
                "clarion-apns-adapter": "Clarion's ApnsSender alone, no DB",
                "clarion-fcm-adapter": "Clarion's FcmSender alone, no DB"}[b["kind"]]
        detail = (f"{b['concurrency']} in flight" if b["kind"] in ("aioapns", "aiohttp-fcm")
                  else f"{b['concurrency']} × 500-message call" if b["kind"] == "firebase-admin"
                  else f"{b['concurrency']} × 500-device batch in flight")
        loop = "uvloop" if b.get("uvloop") else "asyncio"
        if b.get("gc_tuned"):
            loop += ", GC as clarion serve"
        if b.get("jh2"):
            loop += ", jh2 for h2"
        out.append([f"{name} ({detail}, {loop})", "loop, core 1", _f(b["n"]),
                    _f(b["sends_per_s"]),
                    _f(b["ok"] / b["cpu_s"] if b.get("cpu_s") else None),
                    f"{_f(lat.get('p50_ms'), 1)} / {_f(lat.get('p99_ms'), 1)}",
                    _ms(b["sink"].get("request_time_p99_ms")), _f(b.get("peak_rss_mb")),
                    "–", f"{b['ok']:,} ok, {b['failed']:,} failed"])
    for c in results.get("clarion", []):
        if "error" in c:
            out.append([c.get("name", "?"), "error", "–", "–", "–", "–", "–", "–", "–",
                        c["error"][:80]])
            continue
        lat = next(iter(c.get("latency", {}).values()), {})
        platform = c["sends"][0]["platform"] if c["sends"] else "?"
        provider = "APNs" if platform == "ios" else "FCM"
        mode = ("embedded SQLite, core 1" if c["mode"] == "sqlite" else
                f"PostgreSQL, {c['workers']} worker(s), cores 0-1")
        for key, value in c.get("settings", {}).items():
            mode += f", {key}={value}"
        counts: dict[str, int] = {}
        for s in c["sends"]:
            for k, v in s["counts"].items():
                counts[k] = counts.get(k, 0) + v
        outcome = ", ".join(f"{v:,} {k}" for k, v in sorted(counts.items()))
        cpu = c["cpu_s"]["clarion"]
        growth = rss_growth(c)
        sends = f" ({len(c['sends'])} sends)" if len(c["sends"]) > 1 else ""
        out.append([f"Clarion → {provider}{sends}", mode, _f(c["deliveries"]), _f(c["sends_per_s"]),
                    _f(c["deliveries"] / cpu if cpu else None),
                    f"{_f(lat.get('p50_ms'), 1)} / {_f(lat.get('p99_ms'), 1)}",
                    _ms(c["sink"].get("request_time_p99_ms")), _f(c["rss_peak_mb"]),
                    "–" if growth is None else growth_text(c),
                    outcome])
    return out


def rss_growth(c: dict[str, Any]) -> tuple[str, str, float] | None:
    """(from label, to label, MB) between the first and the last send of a multi-send run."""
    sends = c.get("sends", [])
    if len(sends) < 2:
        return None
    a, b = sends[0], sends[-1]
    return (f"{a['cumulative'] // 1000:,}k", f"{b['cumulative'] // 1000:,}k",
            b["rss_after_mb"] - a["rss_after_mb"])


def growth_text(c: dict[str, Any]) -> str:
    """RSS growth from the first send to the last, and from the second (the first of full
    size: the working set is reached) to the last (what a leak would show)."""
    sends = c["sends"]
    first, last = sends[0], sends[-1]
    text = (f"{last['rss_after_mb'] - first['rss_after_mb']:+,.0f} "
            f"({first['cumulative'] // 1000:,}k → {last['cumulative'] // 1000:,}k)")
    if len(sends) > 2:
        second = sends[1]
        text += (f"; {last['rss_after_mb'] - second['rss_after_mb']:+,.0f} "
                 f"({second['cumulative'] // 1000:,}k → {last['cumulative'] // 1000:,}k)")
    return text


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    clarion = [c for c in results.get("clarion", []) if "error" not in c]
    apns_sqlite = [c for c in clarion if c["mode"] == "sqlite" and len(c["sends"]) == 1
                   and c["sends"][0]["platform"] == "ios" and not c.get("settings")]
    big = max(apns_sqlite, key=lambda c: c["deliveries"], default=None)
    aioapns = [b for b in results.get("baselines", [])
               if b.get("kind") == "aioapns" and "error" not in b and not b.get("jh2")]
    best = max(aioapns, key=lambda b: b["sends_per_s"], default=None)
    if big is not None:
        rate = big["sends_per_s"]
        out.append({"target": f"embedded, end to end ≥ {TARGET_RATE:,.0f} sends/s",
                    "scenario": big["name"], "measured": f"{rate:,.0f}/s",
                    "met": rate >= TARGET_RATE,
                    "gap": None if rate >= TARGET_RATE else
                    f"{rate / TARGET_RATE:.0%} of the target"})
        if best is not None:
            ratio = rate / best["sends_per_s"]
            out.append({"target": f"≥ {TARGET_RATIO:g}× the aioapns loop",
                        "scenario": f"{big['name']} vs aioapns "
                                    f"({best['concurrency']} in flight"
                                    f"{', GC as clarion serve' if best.get('gc_tuned') else ''})",
                        "measured": f"{ratio:.2f}× ({rate:,.0f} vs {best['sends_per_s']:,.0f})",
                        "met": ratio >= TARGET_RATIO,
                        "gap": None if ratio >= TARGET_RATIO else
                        f"needs {TARGET_RATIO * best['sends_per_s']:,.0f}/s"})
    rss = [c for c in clarion if len(c["sends"]) > 1]
    if rss:
        c = max(rss, key=lambda c: c["deliveries"])
        growth = rss_growth(c)
        if growth is not None:
            out.append({"target": f"RSS growth < {TARGET_RSS_GROWTH_MB:.0f} MB from 10k to 1M",
                        "scenario": c["name"],
                        "measured": f"{growth_text(c)} MB, peak {c['rss_peak_mb']:.0f} MB",
                        "met": growth[2] < TARGET_RSS_GROWTH_MB and c["deliveries"] >= 1_000_000,
                        "gap": None if c["deliveries"] >= 1_000_000 else
                        f"only {c['deliveries']:,} deliveries measured"})
    return out


def rich_table(results: dict[str, Any]) -> Table:
    table = Table(*HEADERS, title="Delivery benchmark (same sink, same run)")
    for r in rows(results):
        table.add_row(*r)
    return table


def markdown(results: dict[str, Any]) -> str:
    m = results.get("machine", {})
    lines = [f"## Delivery benchmark {results.get('started', '')}"
             f"{' (--quick)' if results.get('quick') else ''}", "",
             f"Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_mb')} MB; "
             f"{m.get('os')}; Python {m.get('python')}; PostgreSQL {m.get('postgresql')}; "
             f"nginx {results.get('sink', {}).get('nginx')}. Load average at start: "
             f"{m.get('load_at_start')}. Wall time {results.get('wall_s')} s.", "",
             "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(results)]
    lines += ["", "| target | scenario | measured | met? |", "|---|---|---|---|"]
    for t in results.get("targets", []):
        met = "yes" if t["met"] else f"NO ({t['gap']})" if t.get("gap") else "NO"
        lines.append(f"| {t['target']} | {t['scenario']} | {t['measured']} | {met} |")
    pg = [c for c in results.get("clarion", []) if c.get("mode") == "postgresql"]
    if pg:
        lines += ["", "CPU seconds during the PostgreSQL runs:", "",
                  "| workers | settings | sends/s | Clarion CPU-s (per process) | PostgreSQL CPU-s "
                  "| nginx CPU-s | POST → done s |",
                  "|---|---|---|---|---|---|---|"]
        for c in pg:
            per = " / ".join(f"{name} {v['cpu_s']}" for name, v in c.get("processes", {}).items())
            settings = ", ".join(f"{k}={v}" for k, v in c.get("settings", {}).items()) or "–"
            lines.append(f"| {c['workers']} | {settings} | {c['sends_per_s']:,.0f} | "
                         f"{c['cpu_s']['clarion']} ({per}) | {c['cpu_s']['postgres']} | "
                         f"{c['cpu_s']['nginx']} | {c['busy_s']} |")
    single = [c for c in results.get("clarion", []) if len(c.get("sends", [])) == 1]
    if single:
        lines += ["", "Where the time of one send goes (seconds after the POST; provider requests "
                  "from the sink's log):", "",
                  "| scenario | first provider request | last provider request | last outcome "
                  "row written | peak RSS per process MB |", "|---|---|---|---|---|"]
        for c in single:
            s = c["sends"][0]
            per = " / ".join(f"{name} {v['peak_rss_mb']:.0f}"
                             for name, v in c.get("processes", {}).items())
            lines.append(f"| {c['name']} | {_f(s.get('first_request_s'), 2)} | "
                         f"{_f(s.get('last_request_s'), 2)} | {_f(s.get('post_to_last_row_s'), 2)}"
                         f" | {per} |")
    rss = [c for c in results.get("clarion", []) if len(c.get("sends", [])) > 1]
    for c in rss:
        lines += ["", f"RSS after each send of {c['name']} (MB): " + ", ".join(
            f"{s['cumulative'] // 1000:,}k: {s['rss_after_mb']:.0f}" for s in c["sends"])]
    prof = results.get("profile")
    if prof and "layers" in prof:
        lines += ["", f"Profile ({prof['samples']:,} samples, {prof['file']}), by layer:", ""]
        lines += [f"- {name}: {pct} %" for name, pct in prof["layers"]]
        lines += ["", "Top self time:", ""]
        lines += [f"- {name}: {pct} %" for name, pct in prof["self"][:15]]
    if prof and "key" in prof:
        lines += ["", "Inclusive time of the delivery path's parts:", ""]
        lines += [f"- {name}: {pct} %" for name, pct in prof["key"]]
    for note in results.get("notes", []):
        lines += ["", f"Note: {note}"]
    return "\n".join(lines) + "\n"
