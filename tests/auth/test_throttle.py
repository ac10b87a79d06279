"""The login throttle's buckets, on a clock the test moves: bursts, refills, Retry-After, refunds
and the clients it remembers (figures worked out by hand from the budgets given)."""

from __future__ import annotations

import pytest

from shared.auth.throttle import KEYS_KEPT, Budget, LoginThrottle
from shared.errors import Throttled


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def _throttle(clock: Clock) -> LoginThrottle:
    return LoginThrottle(identity=Budget(3, 10.0), address=Budget(5, 4.0), clock=clock)


def _refused(throttle: LoginThrottle, identity: str, address: str) -> str:
    with pytest.raises(Throttled) as refused:
        throttle.attempt(identity, address)
    return str(refused.value.retry_after)


def test_identity_bucket_allows_a_burst_then_one_per_refill() -> None:
    clock = Clock()
    throttle = _throttle(clock)
    for number in range(3):
        throttle.attempt("admin", f"192.0.2.{number}")
    assert _refused(throttle, "admin", "192.0.2.9") == "10"
    clock.now += 4
    assert _refused(throttle, "admin", "192.0.2.9") == "6"  # 0.4 of an attempt back: 6 s to go
    clock.now += 6
    throttle.attempt("admin", "192.0.2.9")
    assert _refused(throttle, "admin", "192.0.2.9") == "10"
    throttle.attempt("someone-else", "192.0.2.9")  # another identity is not affected


def test_address_bucket_counts_every_identity_from_that_address() -> None:
    clock = Clock()
    throttle = _throttle(clock)
    for number in range(5):
        throttle.attempt(f"name{number}", "198.51.100.1")
    assert _refused(throttle, "fresh", "198.51.100.1") == "4"
    throttle.attempt("fresh", "198.51.100.2")
    throttle.attempt("fresh", "")  # an unknown address has no bucket
    throttle.attempt("", "198.51.100.3")  # nor has an empty identity (a refresh token)


def test_right_credentials_give_the_attempt_back_and_remember_the_client() -> None:
    clock = Clock()
    throttle = _throttle(clock)
    for _ in range(10):
        throttle.succeeded(throttle.attempt("admin", "203.0.113.1"))
    for number in range(3):  # someone else spends the identity's budget
        throttle.attempt("admin", f"198.51.100.{number}")
    assert _refused(throttle, "admin", "198.51.100.7") == "10"
    for _ in range(5):  # the client that logged in before is let through ...
        throttle.attempt("admin", "203.0.113.1")
    assert _refused(throttle, "admin", "203.0.113.1") == "4"  # ... up to its address budget
    clock.now += 3600  # an hour on, every bucket is full again and the client is a stranger again
    for number in range(3):
        throttle.attempt("admin", f"198.51.100.{number}")
    assert _refused(throttle, "admin", "203.0.113.1") == "10"


def test_undo_gives_the_attempt_back_without_remembering_the_client() -> None:
    clock = Clock()
    throttle = _throttle(clock)
    for _ in range(10):
        throttle.undo(throttle.attempt("admin", "203.0.113.1"))
    for number in range(3):
        throttle.attempt("admin", f"198.51.100.{number}")
    assert _refused(throttle, "admin", "203.0.113.1") == "10"


def test_check_draws_nothing_and_charge_never_refuses() -> None:
    clock = Clock()
    throttle = _throttle(clock)
    for _ in range(20):
        throttle.check("admin", "192.0.2.1")
    for _ in range(5):
        throttle.charge("admin", "192.0.2.1")  # two past the identity's burst of 3
    with pytest.raises(Throttled) as refused:
        throttle.check("admin", "192.0.2.2")
    assert refused.value.retry_after == 30  # three attempts to win back, 10 s each


def test_undo_gives_back_exactly_one_attempt() -> None:
    clock = Clock()
    throttle = _throttle(clock)
    throttle.attempt("admin", "")
    throttle.attempt("admin", "")
    throttle.undo(throttle.attempt("admin", ""))
    throttle.attempt("admin", "")
    assert _refused(throttle, "admin", "") == "10"


def test_retry_after_is_at_least_a_second() -> None:
    clock = Clock()
    throttle = _throttle(clock)
    for _ in range(3):
        throttle.attempt("admin", "")
    clock.now += 9.5
    assert _refused(throttle, "admin", "") == "1"


def test_a_login_from_an_unknown_address_exempts_nobody() -> None:
    clock = Clock()
    throttle = _throttle(clock)
    throttle.succeeded(throttle.attempt("admin", ""))
    for _ in range(3):
        throttle.attempt("admin", "")
    assert _refused(throttle, "admin", "") == "10"


def test_the_oldest_buckets_are_forgotten_first() -> None:
    clock = Clock()
    throttle = _throttle(clock)
    for _ in range(3):
        throttle.attempt("first", "")
    for number in range(KEYS_KEPT):
        throttle.attempt(f"name{number}", "")
    throttle.attempt("first", "")  # forgotten, so a full bucket again
    for _ in range(2):
        throttle.attempt(f"name{KEYS_KEPT - 1}", "")
    assert _refused(throttle, f"name{KEYS_KEPT - 1}", "") == "10"  # the newest is remembered
