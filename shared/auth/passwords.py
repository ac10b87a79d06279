"""Passwords: generated at random, stored only as scrypt hashes, compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict

# scrypt with N=2^14, r=8: about 16 MiB and tens of milliseconds per check, which makes
# guessing a stolen hash expensive while keeping a login cheap.
_N, _R, _P = 2**14, 8, 1
_SCHEME = "scrypt"
# Clients such as oras send Basic credentials with every request; a match is remembered for a
# few minutes (under a SHA-256 of hash and password, in memory only) so only misses pay scrypt.
# A rotated password has a new hash, so it never hits an old entry.
_MATCH_TTL_SECONDS = 300
_MATCHES_KEPT = 1024
_matches: OrderedDict[bytes, float] = OrderedDict()
_matches_lock = threading.Lock()  # checks run in worker threads


def generate_password() -> str:
    """A new random password (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` of ``password`` with a fresh random salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    encode = base64.b64encode
    return f"{_SCHEME}${_N}${_R}${_P}${encode(salt).decode()}${encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches the ``stored`` hash; False for anything malformed."""
    key = hashlib.sha256(f"{stored}\0{password}".encode()).digest()
    now = time.monotonic()
    with _matches_lock:
        if _matches.get(key, 0.0) > now:
            return True
    matched = _verify(password, stored)
    if matched:
        with _matches_lock:
            _matches[key] = now + _MATCH_TTL_SECONDS
            while len(_matches) > _MATCHES_KEPT:
                _matches.popitem(last=False)
    return matched


def _verify(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != _SCHEME:
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def same_secret(given: str, expected: str) -> bool:
    """Constant-time equality of two secrets of any lengths (an empty ``expected`` never matches)."""
    if not expected:
        return False
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest())
