"""Delivery built from stacked pieces: a backoff schedule, one attempt, a scheduler for the next
attempt, and a dead-letter sink (distribution's ``notifications/endpoint.go`` stacks the same).

A delivery is a job with an attempt number. After each attempt :meth:`RetryPolicy.after` is done
(delivered), or after a failure that may be retried hands the next attempt to the
:class:`Scheduler` with the :class:`Backoff`'s delay, or after the last attempt (or a failure that
cannot be retried) hands the job to the :class:`DeadLetters`.
Nothing waits in memory between attempts, so a schedule spans hours and survives restarts when the
scheduler is durable (webhooks: a storage queue message per attempt, with a visibility timeout).
The local Event Grid stacks the same pieces with :class:`InMemoryScheduler` (its attempts wait in
the publishing task, as Event Grid's own retries wait in Azure) and drives them with
:func:`deliver`. Filtering (which deliveries exist at all) happens before a job is made.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
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
    status: int | None = None  # the HTTP status of the last answer, if there was one


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


class InMemoryScheduler(Generic[Job]):
    """A scheduler whose later attempts wait in this process: :meth:`schedule` notes a job's next
    attempt and :meth:`due` waits for it (nothing survives a restart: the caller owns the job)."""

    def __init__(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._sleep = sleep
        self._next: dict[int, tuple[int, float]] = {}

    async def schedule(self, job: Job, attempt: int, delay: float) -> None:
        """Note that attempt ``attempt`` of ``job`` is due in ``delay`` seconds."""
        self._next[id(job)] = (attempt, delay)

    async def due(self, job: Job) -> int:
        """Wait until ``job``'s next attempt is due; its number."""
        attempt, delay = self._next.pop(id(job))
        await self._sleep(delay)
        return attempt


async def deliver(job: Job, attempt: Callable[[Job], Awaitable[Outcome]], policy: RetryPolicy[Job],
                  scheduler: InMemoryScheduler[Job]) -> str:
    """Make attempts of ``job`` until it is delivered or dead-lettered (``policy`` decides, with
    ``scheduler`` as its scheduler); ``delivered`` or ``dead``."""
    number = 1
    while True:
        verdict = await policy.after(job, number, await attempt(job))
        if verdict != "retrying":
            return verdict
        number = await scheduler.due(job)
