"""The in-process worker yields to a saturated API, and only then."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from clarion.worker.pacing import Pacer

pytestmark = pytest.mark.unit


async def test_no_pause_while_the_api_is_not_busy() -> None:
    pacer = Pacer(lambda: False, share=0.25)
    await pacer.after(0.5)
    assert pacer.paused_seconds == 0


async def test_pauses_in_proportion_to_the_work_while_the_api_is_busy() -> None:
    pacer = Pacer(lambda: True, share=0.25)
    started = time.perf_counter()
    await pacer.after(0.01)
    assert pacer.paused_seconds == pytest.approx(0.03)
    assert time.perf_counter() - started >= 0.029


async def test_share_one_never_pauses() -> None:
    pacer = Pacer(lambda: True, share=1.0)
    async with pacer.step():
        await asyncio.sleep(0.01)
    assert pacer.paused_seconds == 0


def test_share_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match="share"):
        Pacer(lambda: True, share=0)


async def test_the_serve_worker_paces_registrations_only_with_the_api_in_its_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from clarion.bootstrap import build
    from clarion.store.jobs import Job
    from clarion.worker import pacing
    from clarion.worker.tasks import build_handlers
    from tests.conftest import make_settings

    pauses: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        pauses.append(seconds)

    monkeypatch.setattr(pacing.asyncio, "sleep", fake_sleep)
    c = build(make_settings(f"sqlite+aiosqlite:///{tmp_path}/x.db", tmp_path,
                            worker_share_under_load=0.5))
    monkeypatch.setattr(c.writer, "busy", lambda: True)
    job = Job(id=1, kind="registration.process", payload={"ids": []}, attempts=1,
              max_attempts=8)
    processed: list[int] = []

    async def fake_process(requests: object) -> None:
        processed.append(1)

    monkeypatch.setattr(c.processor, "process", fake_process)
    await build_handlers(c, with_api=False)["registration.process"]([job])
    assert processed == [] and pauses == []  # no ids: nothing to do, nothing to pace
    untracked = {"id": "r1", "kind": "register"}  # requests riding in the job
    job = Job(id=2, kind="registration.process", payload={"ids": [untracked, untracked]},
              attempts=1, max_attempts=8)
    await build_handlers(c, with_api=False)["registration.process"]([job])
    assert processed == [1] and pauses == []  # a worker process of its own never yields
    await build_handlers(c, with_api=True)["registration.process"]([job])
    assert processed == [1, 1] and len(pauses) == 1  # in `clarion serve` it does
    tracked = Job(id=3, kind="registration.process", payload={"ids": ["a-stored-request-id"]},
                  attempts=1, max_attempts=8)
    await build_handlers(c, with_api=True)["registration.process"]([tracked])
    assert processed == [1, 1, 1] and len(pauses) == 1  # someone polls it: never held back


async def _most_at_once(pacer: Pacer, units: int = 4) -> int:
    """Run ``units`` paced units of 10 ms concurrently; how many ran at the same time."""
    running = 0
    most = 0

    async def unit() -> None:
        nonlocal running, most
        async with pacer.step():
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.01)
            running -= 1

    await asyncio.gather(*(unit() for _ in range(units)))
    return most


async def test_concurrent_units_share_one_budget_while_the_api_is_busy() -> None:
    pacer = Pacer(lambda: True, share=0.5)
    assert await _most_at_once(pacer) == 1  # one at a time: four calls do not get four shares
    assert pacer.paused_seconds == pytest.approx(0.04, abs=0.02)


async def test_concurrent_units_run_together_while_the_api_is_quiet() -> None:
    assert await _most_at_once(Pacer(lambda: False, share=0.5)) == 4
