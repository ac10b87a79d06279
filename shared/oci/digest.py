"""Digests: parsing, validation, and a hasher whose state survives between requests.

An upload's PATCH requests may land on different instances, and committing must not re-read
the data, so the running hash state is saved in storage with the upload. CPython's hashlib
cannot export its state; OpenSSL's SHA-2 contexts are plain structs, so this module drives
them through ctypes and saves their bytes. ctypes releases the GIL during each call, so
hashing runs in a worker thread beside network I/O.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import re
from dataclasses import dataclass

from shared.oci.errors import InvalidDigest

_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_HEX_LENGTH = {"sha256": 64, "sha512": 128}


@dataclass(frozen=True, order=True)
class Digest:
    """A validated ``algorithm:hex`` content digest."""

    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse and validate ``text``; raise InvalidDigest for anything else."""
        if not _DIGEST_RE.fullmatch(text):
            raise InvalidDigest("invalid digest", detail={"digest": text[:200]})
        algorithm, _, hexpart = text.partition(":")
        length = _HEX_LENGTH.get(algorithm)
        if length is None:
            raise InvalidDigest(f"unsupported digest algorithm {algorithm}")
        if len(hexpart) != length or not re.fullmatch(r"[0-9a-f]+", hexpart):
            raise InvalidDigest("invalid digest", detail={"digest": text[:200]})
        return cls(algorithm, hexpart)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        """The digest of ``data``."""
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())


def _load_libcrypto() -> ctypes.CDLL:
    name = ctypes.util.find_library("crypto")
    for candidate in (name, "libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.dylib"):
        if not candidate:
            continue
        try:
            return ctypes.CDLL(candidate)
        except OSError:
            continue
    raise RuntimeError("OpenSSL's libcrypto is required for resumable digests and was not found")


_LIB = _load_libcrypto()
# name -> (context size in bytes, init, update, final, digest size)
_CTX = {
    "sha256": (112, _LIB.SHA256_Init, _LIB.SHA256_Update, _LIB.SHA256_Final, 32),
    "sha512": (216, _LIB.SHA512_Init, _LIB.SHA512_Update, _LIB.SHA512_Final, 64),
}
for _size, _init, _update, _final, _ in _CTX.values():
    _init.argtypes = [ctypes.c_void_p]
    _update.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    _final.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
_STATE_VERSION = b"\x01"


class ResumableHash:
    """A SHA-256/512 hash whose state can be saved with :meth:`state` and restored later."""

    def __init__(self, algorithm: str = "sha256", state: bytes | None = None) -> None:
        if algorithm not in _CTX:
            raise InvalidDigest(f"unsupported digest algorithm {algorithm}")
        self.algorithm = algorithm
        size, init, _, _, _ = _CTX[algorithm]
        self._ctx = ctypes.create_string_buffer(size + 64)  # slack guards against a larger struct
        if state is None:
            init(self._ctx)
        else:
            if len(state) != size + 1 or state[:1] != _STATE_VERSION:
                raise ValueError("saved hash state does not fit this algorithm")
            ctypes.memmove(self._ctx, state[1:], size)

    def update(self, data: bytes | memoryview) -> None:
        """Feed ``data`` into the hash."""
        _CTX[self.algorithm][2](self._ctx, bytes(data) if isinstance(data, memoryview) else data, len(data))

    def state(self) -> bytes:
        """The saved state: restore it with ``ResumableHash(algorithm, state)``."""
        size = _CTX[self.algorithm][0]
        return _STATE_VERSION + self._ctx.raw[:size]

    def digest(self) -> Digest:
        """The digest of everything fed so far (the hash itself stays usable)."""
        size, _, _, final, out_len = _CTX[self.algorithm]
        copy = ctypes.create_string_buffer(size + 64)
        ctypes.memmove(copy, self._ctx, size)
        out = ctypes.create_string_buffer(out_len)
        final(out, copy)
        return Digest(self.algorithm, out.raw.hex())
