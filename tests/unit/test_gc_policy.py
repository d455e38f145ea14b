"""The collector settings ``clarion serve`` and ``clarion worker`` apply once started."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from clarion.config import Settings
from clarion.gc_policy import tune_for_service

pytestmark = pytest.mark.unit


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_freezes_what_exists_and_raises_the_young_threshold(restore_gc: None) -> None:
    gc.unfreeze()
    started = [object(), [1, 2], {"a": []}]  # tracked containers alive at start
    tune_for_service(50_000)
    assert gc.get_freeze_count() > 0
    walked = {id(o) for g in range(3) for o in gc.get_objects(generation=g)}
    assert not any(id(o) in walked for o in started)  # frozen: no collection walks them
    assert gc.get_threshold() == (50_000, 20, 100)
    later = [[] for _ in range(3)]
    assert all(gc.is_tracked(o) for o in later)  # new objects are collected as before
    garbage: list[object] = []
    garbage.append(garbage)  # a cycle created after start-up is still collected
    del garbage
    assert gc.collect() >= 1


def test_zero_keeps_pythons_thresholds(restore_gc: None) -> None:
    before = gc.get_threshold()
    tune_for_service(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() > 0


def test_the_default_and_its_bound() -> None:
    assert Settings().gc_threshold == 50_000
    with pytest.raises(ValueError, match="gc_threshold"):
        Settings(gc_threshold=-1)
