"""Helpers for ``bench/run.py``: Clarion's registration benchmarks (not part of the package)."""
