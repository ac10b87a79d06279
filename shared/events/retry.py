"""Durable delivery built from stacked pieces: a backoff schedule, one attempt, a scheduler for the
next attempt, and a dead-letter sink.

A delivery is a job with an attempt number. After each attempt :meth:`RetryPolicy.after` is done
(delivered), or after a failure that may be retried hands the next attempt to the
:class:`Scheduler` with the :class:`Backoff`'s delay, or after the last attempt (or a failure that
cannot be retried) hands the job to the :class:`DeadLetters`.
Nothing waits in memory between attempts, so a schedule spans hours and survives restarts when the
scheduler is durable (webhooks: a storage queue message per attempt, with a visibility timeout).
Filtering (which deliveries exist at all) happens before a job is made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

Job = TypeVar("Job")
Job_contra = TypeVar("Job_contra", contravariant=True)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``first`` seconds before the second attempt, doubling, at most ``cap``."""

    first: float
    cap: float
    max_attempts: int

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based) before the next."""
        return float(min(self.first * 2.0 ** min(attempt - 1, 62), self.cap))

    def whole_seconds(self, attempt: int) -> int:
        """:meth:`delay` rounded up to whole seconds (a queue's visibility timeout)."""
        return math.ceil(self.delay(attempt))

    def exhausted(self, attempt: int) -> bool:
        """Whether ``attempt`` was the last one."""
        return attempt >= self.max_attempts

    def span(self) -> float:
        """Seconds from the first attempt to the last, if every attempt fails at once."""
        return sum(self.delay(a) for a in range(1, self.max_attempts))


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended: delivered, failed (maybe retried), or failed for good."""

    delivered: bool
    reason: str = ""
    retry: bool = True


class Scheduler(Protocol[Job_contra]):
    """Runs attempts later."""

    async def schedule(self, job: Job_contra, attempt: int, delay: float) -> None:
        """Arrange for attempt ``attempt`` of ``job`` to run after ``delay`` seconds; raise if it cannot."""
        ...


class DeadLetters(Protocol[Job_contra]):
    """Keeps what could not be delivered, visibly, until someone re-delivers it."""

    async def dead_letter(self, job: Job_contra, attempt: int, outcome: Outcome) -> None:
        """Record that ``job`` failed for good after ``attempt`` attempts, with the last outcome."""
        ...


@dataclass(frozen=True)
class RetryPolicy(Generic[Job]):
    """The backoff, the scheduler of later attempts and the dead-letter sink of one kind of delivery."""

    backoff: Backoff
    scheduler: Scheduler[Job]
    dead_letters: DeadLetters[Job]

    async def after(self, job: Job, attempt: int, outcome: Outcome) -> str:
        """Act on the outcome of attempt ``attempt``: ``delivered``, ``retrying`` or ``dead``."""
        if outcome.delivered:
            return "delivered"
        if outcome.retry and not self.backoff.exhausted(attempt):
            await self.scheduler.schedule(job, attempt + 1, self.backoff.delay(attempt))
            return "retrying"
        await self.dead_letters.dead_letter(job, attempt, outcome)
        return "dead"
