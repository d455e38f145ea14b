"""Typed tasks: a kind of background work declared once, with its arguments' type and how
they travel in a job's JSON payload, side by side.

A ``Task`` is declared next to the service that handles it (``SEND_FANOUT =
Task("send.fanout", FanOutPage.encode, FanOutPage.decode)``); whoever queues work calls
``TASK.job(args)`` and gets a ``NewJob`` for ``JobQueue.enqueue``, and the worker decodes each
claimed job with ``TASK.args(job)`` before calling the handler (``clarion.worker.tasks``).
So the code writing a payload and the code reading it are the same two functions.

Tasks fed by the group commit (``GroupCommitWriter``: one job per commit for every request
accepted in it) have a payload ``{"ids": [item, …]}``; ``task.batch(items)`` names a
submission's items and the writer concatenates those of one commit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

from clarion.store.jobs import Job, NewJob

A = TypeVar("A")


class Batch(NamedTuple):
    """Items of one group-commit submission for a ``{"ids": [...]}`` task (JSON values).

    A named tuple rather than a frozen dataclass: as immutable and cheaper to build (one per
    accepted registration or interaction request)."""

    task: str
    items: Sequence[Any]


@dataclass(frozen=True, slots=True)
class Task(Generic[A]):
    name: str
    encode: Callable[[A], dict[str, Any]]
    decode: Callable[[Mapping[str, Any]], A]
    max_attempts: int | None = None  # None: the queue's CLARION_JOB_MAX_ATTEMPTS

    def job(self, args: A, *, unique_key: str | None = None,
            run_at_ms: int | None = None) -> NewJob:
        return NewJob(kind=self.name, payload=self.encode(args), unique_key=unique_key,
                      run_at_ms=run_at_ms, max_attempts=self.max_attempts)

    def args(self, job: Job) -> A:
        return self.decode(job.payload)

    def batch(self, items: Sequence[Any]) -> Batch:
        """This submission's items of a ``{"ids": [...]}`` task, for the group commit."""
        return Batch(self.name, items)
