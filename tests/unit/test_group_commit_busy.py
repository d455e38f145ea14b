"""The group-commit writer reports when requests queue up behind it (the worker's cue)."""

from __future__ import annotations

import pytest

from clarion.store.group_commit import GroupCommitWriter

pytestmark = pytest.mark.unit


def _writer() -> GroupCommitWriter:
    return GroupCommitWriter(db=None, queue=None)  # type: ignore[arg-type]  # never commits here


def _commits(w: GroupCommitWriter, now: list[float], rows: int, count: int) -> None:
    for _ in range(count):
        w._note_commit(rows, now[0])
        now[0] += 1.0 / count


def test_idle_writer_is_not_busy() -> None:
    assert not _writer().busy()


def test_big_commits_are_busy_and_it_wears_off(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("clarion.store.group_commit.time.monotonic", lambda: now[0])
    w = _writer()
    _commits(w, now, rows=40, count=50)  # 2,000 rows/s arriving 40 at a time
    _commits(w, now, rows=40, count=5)
    assert w.busy()
    now[0] += 3.0  # nothing committed since: the API went quiet
    assert not w.busy()


def test_small_commits_are_not_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("clarion.store.group_commit.time.monotonic", lambda: now[0])
    w = _writer()
    _commits(w, now, rows=3, count=300)  # 1,000 rows/s, a few at a time
    _commits(w, now, rows=3, count=5)
    assert not w.busy()
