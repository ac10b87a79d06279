"""Passwords: generated at random, stored only as scrypt hashes, compared in constant time.

Every check costs the same, so the time it takes tells nothing about the name it was for: one
scrypt computation, whether the name is unknown (a dummy hash is checked), has one password or two
(the passwords of one identity share its salt, so one computation checks both) or is the admin
user (whose passwords are hashed the same way when first needed). Hashes written before passwords
shared a salt cost one computation per salt until either password is set again.

The computations run on a small pool of their own (:data:`HASHING_THREADS`), never on the event
loop's default executor that uploads hash their blocks on; at most :data:`HASHING_WAITING` more
wait their turn, and beyond that a check is refused with :class:`HashingBusy` at once. A match
is remembered for a few minutes (under a SHA-256 of hash and password, in memory only), checked
on the event loop, so clients that send Basic credentials with every request pay scrypt once.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

# scrypt with N=2^14, r=8: about 16 MiB and tens of milliseconds per check, which makes
# guessing a stolen hash expensive while keeping a login cheap.
_N, _R, _P = 2**14, 8, 1
_SCHEME = "scrypt"
_SALT_BYTES = 16
#: scrypt computations at once: half the CPUs (at least one), so requests keep the rest
HASHING_THREADS = max(1, (os.cpu_count() or 2) // 2)
#: checks that may wait for a hashing thread; more are refused at once (HashingBusy)
HASHING_WAITING = 32
_MATCH_TTL_SECONDS = 300
_MATCHES_KEPT = 1024

_executor = ThreadPoolExecutor(HASHING_THREADS, thread_name_prefix="scrypt")
_matches: OrderedDict[bytes, float] = OrderedDict()
_lock = threading.Lock()  # the cache and the counter may be used from several event loops
_pending = 0


class HashingBusy(Exception):
    """More password checks are waiting than :data:`HASHING_WAITING`; try again shortly."""


def generate_password() -> str:
    """A new random password (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$hash`` of ``password`` with ``salt`` (default: a fresh random one).

    Slow: call it through :func:`hash_new` from a request.
    """
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    encode = base64.b64encode
    return f"{_SCHEME}${_N}${_R}${_P}${encode(salt).decode()}${encode(digest).decode()}"


_DUMMY_HASH = hash_password(generate_password())


def _parse(stored: str) -> tuple[tuple[int, int, int, bytes], bytes] | None:
    """((N, r, p, salt), digest) of a stored hash; None when it is not one of ours."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != _SCHEME:
            return None
        params = (int(n), int(r), int(p), base64.b64decode(salt, validate=True))
        expected = base64.b64decode(digest, validate=True)
    except ValueError:
        return None
    if not expected or params[0] < 2 or params[1] < 1 or params[2] < 1:
        return None
    return params, expected


def salt_of(stored: str) -> bytes | None:
    """The salt of a stored hash (None when malformed), for a sibling password to share."""
    parsed = _parse(stored)
    return parsed[0][3] if parsed else None


def _cache_key(password: str, stored: str) -> bytes:
    return hashlib.sha256(f"{stored}\0{password}".encode()).digest()


def cached_match(password: str, hashes: Sequence[str]) -> int | None:
    """The index of a hash ``password`` was recently found to match, without computing anything."""
    now = time.monotonic()
    keys = [_cache_key(password, stored) for stored in hashes]
    with _lock:
        for index, key in enumerate(keys):
            if _matches.get(key, 0.0) > now:
                return index
    return None


def _remember(password: str, stored: str) -> None:
    with _lock:
        _matches[_cache_key(password, stored)] = time.monotonic() + _MATCH_TTL_SECONDS
        while len(_matches) > _MATCHES_KEPT:
            _matches.popitem(last=False)


def _compute(password: str, params: tuple[int, int, int, bytes], dklen: int) -> bytes:
    n, r, p, salt = params
    try:
        return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=dklen)
    except (ValueError, MemoryError):
        return b""


async def _on_pool(password: str, params: tuple[int, int, int, bytes], dklen: int) -> bytes:
    global _pending
    with _lock:
        if _pending >= HASHING_THREADS + HASHING_WAITING:
            raise HashingBusy
        _pending += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(_executor, _compute, password, params, dklen)
    finally:
        with _lock:
            _pending -= 1


async def match(password: str, hashes: Sequence[str]) -> int | None:
    """The index of the first of ``hashes`` that ``password`` matches, or None.

    A recent match costs nothing; otherwise one scrypt computation per distinct salt among the
    hashes, and one against a dummy hash when there is none, so a name without passwords costs
    as much as one with two. Raises :class:`HashingBusy` when too many checks are waiting.
    """
    cached = cached_match(password, hashes)
    if cached is not None:
        return cached
    groups: dict[tuple[int, int, int, bytes], list[tuple[int, bytes]]] = {}
    for index, stored in enumerate(hashes):
        parsed = _parse(stored)
        if parsed is not None:
            groups.setdefault(parsed[0], []).append((index, parsed[1]))
    if not groups:
        dummy = _parse(_DUMMY_HASH)
        assert dummy is not None
        groups[dummy[0]] = [(-1, dummy[1])]
    found = None
    for params, members in groups.items():
        actual = await _on_pool(password, params, len(members[0][1]))
        for index, expected in members:  # compare with every member: no early exit
            if hmac.compare_digest(actual, expected) and index >= 0 and found is None:
                found = index
    if found is not None:
        _remember(password, hashes[found])
    return found


async def hash_new(password: str, siblings: Sequence[str] = ()) -> str:
    """Hash a new password on the hashing pool, with the salt of the first well-formed sibling
    hash (the identity's other password) so that one computation checks both."""
    salt = next((s for s in map(salt_of, siblings) if s), None) or secrets.token_bytes(_SALT_BYTES)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, hash_password, password, salt)

