"""Garbage-collector settings for the long-running processes (``clarion serve``, ``clarion
worker``).

Why: CPython's cyclic collector walks every tracked object of the generations it collects. A
started Clarion process holds ~190,000 such objects (SQLAlchemy's metadata and compiled
statements, FastAPI/pydantic models, the providers' libraries) that live until it exits, and
every full (generation 2) collection walked all of them. With Python's default thresholds a
process delivering notifications ran ~40 full collections per 100,000 notifications at
~110 ms each: a quarter of its CPU (bench/delivery, docs/benchmarks.md).

What, once the process has started:

1. ``gc.freeze()`` moves every object that exists then into a permanent generation the
   collector never walks (the ``gc`` module documents it for this use). Objects created
   later are collected as before; a frozen object is still freed when its last reference
   goes.
2. The generation-0 threshold is raised from 700 to ``CLARION_GC_THRESHOLD`` allocations
   (default 50,000; 0 keeps Python's defaults). The objects of a batch in flight (rows,
   HTTP/2 frames, futures) then die before a young collection sees them, instead of being
   promoted and walked again by the older generations. The cost is at most that many
   uncollected objects of cyclic garbage at a time: a few MB.
"""

from __future__ import annotations

import gc

# Older generations are collected after this many collections of the one below (Python: 10, 10).
_OLDER = (20, 100)


def tune_for_service(gen0_threshold: int) -> None:
    """Freeze what start-up created and apply the generation-0 threshold (0: Python's own)."""
    gc.collect()  # what start-up left as garbage is not frozen with the rest
    gc.freeze()
    if gen0_threshold > 0:
        gc.set_threshold(gen0_threshold, *_OLDER)
