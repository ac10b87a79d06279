"""A blob over 4 GiB pushed to a real registry process with flat memory, then pulled intact.

The bytes are generated as they are sent (never held whole nor written to disk by the test);
storage (Azurite) writes them once. The push is two streamed PATCHes, the first ending past
2^31 bytes (the offset that used to fail as Edm.Int32), the second past 2^32.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ResourceNotFoundError

from scripts.azurite import Azurite, free_port, stop_process
from shared.storage.accounts import StorageAccount
from shared.storage.clients import StorageClients
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, start_registry, test_settings

MiB = 1024 * 1024
FIRST = 2 * 1024 * MiB + 3 * MiB + 5  # past 2^31
TOTAL = 4 * 1024 * MiB + 9 * MiB + 11  # past 2^32
PEAK_RSS_LIMIT = 300 * MiB


def peak_rss(pid: int) -> int:
    """The highest resident set size the process has had (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("VmHWM not found")


def pieces(start: int, end: int, seed: bytes) -> Iterator[bytes]:
    """Bytes ``start .. end-1`` of a long pseudo-random stream, in pieces of up to 1 MiB."""
    position = start
    while position < end:
        index, skip = divmod(position, MiB)
        block = hashlib.shake_256(seed + index.to_bytes(8, "big")).digest(MiB)[skip:]
        block = block[:end - position]
        position += len(block)
        yield block


async def sent(start: int, end: int, seed: bytes, hasher: Any) -> AsyncIterator[bytes]:
    """An upload body: the stream's bytes ``start .. end-1``, hashed as they go."""
    for piece in pieces(start, end, seed):
        hasher.update(piece)
        yield piece


@pytest.mark.slow
async def test_blob_over_4_gib_is_pushed_with_flat_memory_and_pulled_intact(azurite: Azurite) -> None:
    settings = test_settings(azurite)
    process = start_registry(settings, port := free_port())
    seed = os.urandom(16)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", auth=(ADMIN_USER, ADMIN_PASSWORD),
                                     timeout=httpx.Timeout(1800, connect=10)) as http:
            baseline = peak_rss(process.pid)
            hasher = hashlib.sha256()
            location = (await http.post("/v2/big/layer/blobs/uploads/")).headers["location"]
            first = await http.patch(location, content=sent(0, FIRST, seed, hasher))
            assert first.status_code == 202, first.text
            assert first.headers["range"] == f"0-{FIRST - 1}"
            status = await http.get(location)
            assert status.headers["range"] == f"0-{FIRST - 1}"
            second = await http.patch(location, content=sent(FIRST, TOTAL, seed, hasher))
            assert second.status_code == 202, second.text
            assert second.headers["range"] == f"0-{TOTAL - 1}"
            digest = "sha256:" + hasher.hexdigest()
            done = await http.put(location, params={"digest": digest})
            assert done.status_code == 201, done.text
            pushed_peak = peak_rss(process.pid)
            head = await http.head(f"/v2/big/layer/blobs/{digest}")
            assert head.headers["content-length"] == str(TOTAL)

            redirect = await http.get(f"/v2/big/layer/blobs/{digest}")
            assert redirect.status_code == 307
            pulled = hashlib.sha256()
            size = 0
            async with httpx.AsyncClient(timeout=httpx.Timeout(1800, connect=10)) as plain, \
                    plain.stream("GET", redirect.headers["location"]) as response:
                assert response.status_code == 200
                async for chunk in response.aiter_bytes():
                    pulled.update(chunk)
                    size += len(chunk)
            assert size == TOTAL
            assert "sha256:" + pulled.hexdigest() == digest
            print(f"registry peak RSS: {baseline / MiB:.0f} MiB before, {pushed_peak / MiB:.0f} MiB after "
                  f"pushing {TOTAL / MiB:.0f} MiB")
            assert pushed_peak < PEAK_RSS_LIMIT
            assert pushed_peak - baseline < 200 * MiB
            assert (await http.delete(f"/v2/big/layer/blobs/{digest}")).status_code == 202
    finally:
        stop_process(process)
        # Free the emulator's disk for the rest of the session.
        clients = StorageClients(StorageAccount.from_settings(settings))
        try:
            async for blob in clients.container.list_blobs():
                await clients.container.delete_blob(blob.name)
        except ResourceNotFoundError:
            pass
        finally:
            await clients.close()
