"""Throttling of failed logins, per identity (the username) and per client address.

Each key has a bucket of :data:`IDENTITY` or :data:`ADDRESS` attempts that refills steadily. A
login whose password is not already known to be right takes one attempt from each of its buckets
*before* it is checked and gives it back when it turns out right, so a burst of concurrent
guesses cannot overrun the budget; an empty bucket answers 429 TOOMANYREQUESTS with
``Retry-After``, whatever the password (a right one is refused like a wrong one, so the throttle
is no oracle). A client that logged in as an identity from its address within the last hour is
not held back by that identity's bucket, so an attacker guessing the admin password elsewhere
does not lock out the registry's own clients; its address bucket still applies.

The buckets live in the memory of one instance: with N instances behind a load balancer an
attacker gets up to N times the budget, and a restart refills them (docs/identity-and-access.md).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from shared.errors import Throttled


@dataclass(frozen=True)
class Budget:
    """``burst`` attempts at once, then one more every ``refill_seconds``."""

    burst: int
    refill_seconds: float


IDENTITY = Budget(10, 6.0)
ADDRESS = Budget(30, 2.0)
KNOWN_CLIENT_SECONDS = 3600
#: buckets and remembered clients kept per instance; the oldest go first
KEYS_KEPT = 20_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True)
class Attempt:
    """The buckets one login attempt drew from; hand it back to :meth:`LoginThrottle.succeeded`."""

    identity: str
    address: str
    keys: tuple[str, ...]


class LoginThrottle:
    """In-memory buckets of login attempts per identity and per address."""

    def __init__(self, identity: Budget = IDENTITY, address: Budget = ADDRESS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.budgets = {"i": identity, "a": address}
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._known: OrderedDict[tuple[str, str], float] = OrderedDict()

    def _level(self, key: str, now: float) -> _Bucket:
        budget = self.budgets[key[0]]
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(budget.burst), now)
        else:
            refilled = (now - bucket.updated) / budget.refill_seconds
            bucket = _Bucket(min(float(budget.burst), bucket.tokens + refilled), now)
        return bucket

    def _keys(self, identity: str, address: str, now: float) -> tuple[str, ...]:
        keys = []
        if identity and self._known.get((identity, address), 0.0) <= now:
            keys.append("i" + identity[:128])
        if address:
            keys.append("a" + address)
        return tuple(keys)

    def check(self, identity: str, address: str) -> None:
        """Throttled (with the seconds to wait) when a bucket of ``identity`` (empty: none, as for a
        refresh token) or ``address`` (empty: unknown) is empty; draws nothing."""
        now = self.clock()
        keys = self._keys(identity, address, now)
        waits = [(1 - level.tokens) * self.budgets[key[0]].refill_seconds
                 for key, level in ((k, self._level(k, now)) for k in keys) if level.tokens < 1]
        if waits:
            raise Throttled("too many failed logins; try again later", retry_after=max(1, math.ceil(max(waits))))

    def attempt(self, identity: str, address: str) -> Attempt:
        """Draw one attempt before checking a password (Throttled when a bucket is empty)."""
        self.check(identity, address)
        return self.charge(identity, address)

    def charge(self, identity: str, address: str) -> Attempt:
        """Draw one attempt for a failure found without :meth:`attempt` (never refuses)."""
        now = self.clock()
        keys = self._keys(identity, address, now)
        for key in keys:
            level = self._level(key, now)
            level.tokens -= 1
            self._store(key, level)
        return Attempt(identity, address, keys)

    def undo(self, attempt: Attempt) -> None:
        """Give an attempt back: the check could not be made (storage or hashing busy)."""
        now = self.clock()
        for key in attempt.keys:
            level = self._level(key, now)
            level.tokens += 1
            self._store(key, level)

    def succeeded(self, attempt: Attempt) -> None:
        """The credentials were right: give the attempt back and remember the client."""
        self.undo(attempt)
        if attempt.identity and attempt.address:
            pair = (attempt.identity, attempt.address)
            self._known[pair] = self.clock() + KNOWN_CLIENT_SECONDS
            self._known.move_to_end(pair)
            while len(self._known) > KEYS_KEPT:
                self._known.popitem(last=False)

    def _store(self, key: str, bucket: _Bucket) -> None:
        if bucket.tokens >= self.budgets[key[0]].burst:
            self._buckets.pop(key, None)  # a full bucket is the same as none
            return
        self._buckets[key] = bucket
        self._buckets.move_to_end(key)
        while len(self._buckets) > KEYS_KEPT:
            self._buckets.popitem(last=False)
