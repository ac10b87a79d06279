"""The delivery pieces driven in memory, as the local Event Grid stacks them: the backoff decides
the waits, the scheduler holds the next attempt, the dead-letter sink gets what fails for good."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from shared.events.retry import Backoff, InMemoryScheduler, Outcome, RetryPolicy, deliver


@dataclass
class Letters:
    """A dead-letter sink that keeps what it is given."""

    kept: list[tuple[str, int, Outcome]] = field(default_factory=list)

    async def dead_letter(self, job: str, attempt: int, outcome: Outcome) -> None:
        self.kept.append((job, attempt, outcome))


def _run(outcomes: list[Outcome], backoff: Backoff) -> tuple[str, list[float], list[int], Letters]:
    """Deliver one job whose attempts end as ``outcomes`` say; (verdict, waits, attempts, dead letters)."""
    waits: list[float] = []
    attempts: list[int] = []
    letters = Letters()

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def attempt(job: str) -> Outcome:
        attempts.append(len(attempts) + 1)
        return outcomes[len(attempts) - 1]

    scheduler: InMemoryScheduler[str] = InMemoryScheduler(sleep)
    verdict = asyncio.run(deliver("event-1", attempt, RetryPolicy(backoff, scheduler, letters), scheduler))
    return verdict, waits, attempts, letters


def test_failures_are_retried_after_doubling_waits_until_delivered() -> None:
    failed = Outcome(False, "HTTP 503", status=503)
    verdict, waits, attempts, letters = _run([failed, failed, failed, Outcome(True)], Backoff(0.5, 60.0, 8))
    assert verdict == "delivered"
    assert waits == [0.5, 1.0, 2.0]
    assert attempts == [1, 2, 3, 4]
    assert letters.kept == []


def test_the_wait_is_capped_and_the_last_failure_is_dead_lettered_with_its_attempts() -> None:
    failed = Outcome(False, "HTTP 500", status=500)
    verdict, waits, attempts, letters = _run([failed] * 5, Backoff(20.0, 60.0, 5))
    assert (verdict, attempts) == ("dead", [1, 2, 3, 4, 5])
    assert waits == [20.0, 40.0, 60.0, 60.0]
    assert letters.kept == [("event-1", 5, failed)]


def test_a_failure_that_may_not_be_retried_is_dead_lettered_at_once() -> None:
    refused = Outcome(False, "HTTP 400", retry=False, status=400)
    verdict, waits, attempts, letters = _run([refused], Backoff(1.0, 60.0, 8))
    assert (verdict, waits, attempts) == ("dead", [], [1])
    assert letters.kept == [("event-1", 1, refused)]
