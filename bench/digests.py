"""What naming a sha512 digest at the final PUT costs the registry, beside the usual sha256.

    python -m bench.digests [--mib 1024]

Uploads are hashed with sha256 as they stream; a final PUT naming another algorithm makes the
registry re-read the committed blob once to hash it (as the reference registry does). This
pushes the same amount of random bytes both ways (one streamed PATCH, then the PUT) to a
registry on a fresh Azurite and prints the registry process's CPU seconds and the wall time of
each step, plus what hashing alone costs here (the price of hashing every upload twice instead).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from bench.servers import Registry, cpu_seconds, rss_bytes
from scripts.azurite import Azurite

MiB = 1024 * 1024


async def _body(size: int, hashers: list[Any]) -> AsyncIterator[bytes]:
    block = os.urandom(MiB)
    for i in range(size // MiB):
        piece = i.to_bytes(8, "big") + block[8:]  # distinct pieces, cheap to make
        for hasher in hashers:
            hasher.update(piece)
        yield piece


async def _push(registry: Registry, algorithm: str, size: int) -> dict[str, float]:
    hasher = hashlib.new(algorithm)
    figures: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=registry.url, timeout=1800, auth=registry.login) as http:
        location = (await http.post(f"/v2/bench/{algorithm}/blobs/uploads/")).headers["location"]
        cpu, wall = cpu_seconds(registry.pid), time.perf_counter()
        patched = await http.patch(location, content=_body(size, [hasher]))
        patched.raise_for_status()
        figures["patch_cpu"], figures["patch_wall"] = cpu_seconds(registry.pid) - cpu, time.perf_counter() - wall
        cpu, wall = cpu_seconds(registry.pid), time.perf_counter()
        put = await http.put(location, params={"digest": f"{algorithm}:{hasher.hexdigest()}"})
        put.raise_for_status()
        figures["put_cpu"], figures["put_wall"] = cpu_seconds(registry.pid) - cpu, time.perf_counter() - wall
    return figures


def _hash_rate(algorithm: str, size: int = 256 * MiB) -> float:
    data = os.urandom(8 * MiB)
    hasher = hashlib.new(algorithm)
    started = time.process_time()
    for _ in range(size // len(data)):
        hasher.update(data)
    return size / MiB / (time.process_time() - started)


def main() -> None:
    """Run the comparison and print one line per algorithm."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=1024, help="size of each push in MiB (default 1024)")
    size = parser.parse_args().mib * MiB
    for algorithm in ("sha256", "sha512"):
        print(f"hashing alone, {algorithm}: {_hash_rate(algorithm):.0f} MiB/s of CPU")
    with Azurite() as azurite, Registry(azurite) as registry:
        for algorithm in ("sha256", "sha512"):
            f = asyncio.run(_push(registry, algorithm, size))
            print(f"push {size // MiB} MiB, digest {algorithm}: PATCH {f['patch_cpu']:.2f} s CPU "
                  f"({f['patch_wall']:.1f} s), PUT {f['put_cpu']:.2f} s CPU ({f['put_wall']:.1f} s); "
                  f"registry peak RSS {rss_bytes(registry.pid, 'VmHWM') / MiB:.0f} MiB")


if __name__ == "__main__":
    main()
