"""The ``label=SRC[:NAME=VALUE,...]`` variants of the A/B benchmarks (``bench/delivery/ab.py``,
``bench/accept_cpu.py``): ``clarion`` imported from ``SRC`` with extra environment variables."""

from __future__ import annotations

from pathlib import Path


def parse_variant(spec: str) -> tuple[str, str, dict[str, str]]:
    """(label, the absolute SRC, the extra environment) of one variant argument."""
    label, _, rest = spec.partition("=")
    src, _, extra = rest.partition(":")
    if not label or not src:
        raise SystemExit(f"{spec!r}: expected label=SRC[:NAME=VALUE,...]")
    env = dict(item.split("=", 1) for item in extra.split(",") if item)
    return label, str(Path(src).resolve()), env
