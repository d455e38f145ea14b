"""Before/after of the embedded delivery path in one sitting, with an aioapns loop every round.

    .venv/bin/python -m bench.delivery.ab --rounds 3 before=/tmp/before/src after=src
    .venv/bin/python -m bench.delivery.ab after=src frozen=src:CLARION_GC_THRESHOLD=0

Each variant is ``label=SRC[:NAME=VALUE,...]``: ``clarion`` imported from ``SRC`` (a worktree's
``src`` for another commit, through ``PYTHONPATH``) with extra environment variables. Every
distinct ``SRC`` gets its own world, built by that code (its own migrations), through the
product. A round runs the aioapns loop (100 in flight, uvloop), then each variant once on a
fresh copy of its world (APNs, ``--people`` × ``--devices`` (1,000), ``clarion serve``
pinned to core 1), alternating the order from round to round. Medians are printed at the end;
everything goes to ``bench/results/delivery-ab-<stamp>.json``. Same sink, processes and
measurements as ``run.py`` (whose README explains them).
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.clarion_bench.variants import parse_variant
from bench.delivery import world as W
from bench.delivery.clarion_runs import run_scenario
from bench.delivery.run import RESULTS, SENDER_CORE, SINK_CORE, baseline
from bench.delivery.sink import Sink


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", help="label=SRC[:NAME=VALUE,...]")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--people", type=int, default=100, help="iOS people")
    parser.add_argument("--devices", type=int, default=1000, help="devices per person")
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variants]
    from clarion.emulators.tls import make_pki

    work = Path(tempfile.mkdtemp(prefix="clarion-ab-"))
    pki = make_pki(work / "pki")
    sink = Sink(work, pki.ca_file, pki.cert_file, pki.key_file, core=SINK_CORE)
    sink.start()
    secret = secrets.token_urlsafe(48)
    results: dict[str, Any] = {"variants": args.variants, "rounds": [], "people": args.people}
    try:
        worlds: dict[str, tuple[dict[str, str], Path, W.World]] = {}
        for _, src, _ in variants:
            if src in worlds:
                continue
            base = dict(W.base_env(sink.url, pki.ca_file, secret))
            base["PYTHONPATH"] = f"{src}:{base['PYTHONPATH']}"
            world_dir = work / f"world-{len(worlds)}"
            print(f"building a world with {src} …", flush=True)
            worlds[src] = (base, world_dir, W.build_world(
                var_dir=world_dir, database_url=None, plan=W.Plan(args.people, 0, args.devices),
                base=base, sink_url=sink.url, work=work, on_progress=lambda *_: None))
        some = next(iter(worlds.values()))[2]
        files = {"p8": work / "bench.p8", "sa": work / "sa.json"}
        files["p8"].write_text(some.p8)
        files["sa"].write_text(json.dumps(some.sa))
        for n in range(args.rounds):
            got: dict[str, Any] = {}
            base_run = baseline("aioapns", sink, work, n=20_000, concurrency=100, uvloop=True,
                                files=files)
            got["aioapns"] = round(base_run.get("sends_per_s", 0))
            print(f"round {n + 1}: aioapns {got['aioapns']:,}/s", flush=True)
            for label, src, extra in (variants if n % 2 == 0 else variants[::-1]):
                base, world_dir, world = worlds[src]
                var = W.copy_sqlite(world_dir, work / f"{label}-{n}")
                res = run_scenario(name=f"{label}-{n}", mode="sqlite",
                                   env=dict(base, CLARION_VAR_DIR=str(var), **extra),
                                   world=world, sink=sink, plan=[("ios", args.people)],
                                   work=work, serve_cores=str(SENDER_CORE),
                                   sqlite_db=var / "clarion.db")
                got[label] = round(res.rate)
                got[f"{label}_cpu_s"] = res.cpu_s.get("clarion")
                got[f"{label}_errors"] = res.errors
                print(f"round {n + 1}: {label} {got[label]:,}/s, CPU {got[f'{label}_cpu_s']} s"
                      f"{', errors: ' + str(res.errors[:2]) if res.errors else ''}", flush=True)
            results["rounds"].append(got)
    finally:
        sink.stop()
    for label in ["aioapns"] + [v[0] for v in variants]:
        rates = [r[label] for r in results["rounds"]]
        print(f"{label}: {rates} median {statistics.median(rates):,.0f}/s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"delivery-ab-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
