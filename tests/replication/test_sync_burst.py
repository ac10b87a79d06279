"""Replication under load and across a crash: a burst of pushes all arrive, and a registry process
killed (SIGKILL) while it replicates an image finishes the job once it is started again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import time
from typing import Any

import httpx
import pytest

from scripts.azurite import free_port
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, start_registry
from tests.manifest_helpers import encode
from tests.oci import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, descriptor, digest_of
from tests.replication.harness import (
    linked_blob_hashes,
    pending_rows,
    regions_of,
    repository_rows,
)
from tests.replication.regions import region_settings
from tests.storage import StorageProbe

BURST = 100


async def _push_small(client: httpx.AsyncClient, repository: str, tag: str) -> tuple[str, float]:
    """Push a config and a 100-byte layer, then the manifest under ``tag``; (digest, time of the 201)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": os.urandom(8).hex()}).encode()
    layer = os.urandom(100)
    for data in (config, layer):
        start = await client.post(f"/v2/{repository}/blobs/uploads/")
        assert start.status_code == 202, start.text
        done = await client.put(start.headers["location"], params={"digest": digest_of(data)}, content=data)
        assert done.status_code == 201, done.text
    raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
                      "layers": [descriptor(OCI_LAYER, layer)]}).encode()
    response = await client.put(f"/v2/{repository}/manifests/{tag}", content=raw,
                                headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return digest_of(raw), time.monotonic()


async def _manifests_seen(probe: StorageProbe, repository: str, wanted: int, seen: dict[str, float],
                          within: float) -> None:
    """Poll ``probe``'s region until it has ``wanted`` manifests of ``repository``, noting when each appeared."""
    deadline = time.monotonic() + within
    query = "PartitionKey eq @pk and RowKey ge 'm|' and RowKey lt 'm}'"
    while len(seen) < wanted and time.monotonic() < deadline:
        async for row in probe.clients.repos.query_entities(query, parameters={"pk": encode(repository)},
                                                            select=["RowKey"]):
            seen.setdefault(row["RowKey"][2:], time.monotonic())
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_a_burst_of_100_images_pushed_at_once_in_east_all_reach_west(azurite: Any) -> None:
    async with regions_of(azurite) as regions:
        east, west = regions["east"], regions["west"]
        seen: dict[str, float] = {}
        watcher = asyncio.create_task(_manifests_seen(west.probe, "burst/app", BURST, seen, 300))
        began = time.monotonic()
        pushed = await asyncio.gather(*(_push_small(east.client, "burst/app", f"t{i}") for i in range(BURST)))
        pushes_took = time.monotonic() - began
        await east.settle()
        await asyncio.wait_for(watcher, 300)
        elapsed = time.monotonic() - began

        assert sorted(seen) == sorted(digest for digest, _ in pushed)
        latencies = sorted(seen[digest] - created for digest, created in pushed)
        p50, p95 = statistics.median(latencies), latencies[int(0.95 * len(latencies)) - 1]
        print(f"\nburst of {BURST}: pushed in {pushes_took:.1f} s, all replicated after {elapsed:.1f} s; push 201 -> "
              f"manifest row in "
              f"west: p50 {p50:.2f} s, p95 {p95:.2f} s, max {latencies[-1]:.2f} s")
        east_rows, west_rows = await east.rows("burst/app"), await west.rows("burst/app")
        assert west_rows == east_rows
        assert len([k for k in west_rows if k.startswith("t|")]) == BURST
        assert len([k for k in west_rows if k.startswith("m|")]) == BURST
        hashes = await west.linked_blob_hashes("burst/app")
        assert len(hashes) == 2 * BURST and all(hashes[d] == d for d in hashes)
        assert await east.pending() == []


@pytest.mark.slow
@pytest.mark.parametrize("finisher", ["outbox", "timer"])
async def test_east_killed_while_replicating_a_multi_layer_image_finishes_it_after_a_restart(
        azurite: Any, finisher: str) -> None:
    """The outbox row of the push survives the kill, and so does the pending row: after a restart
    the outbox sweep delivers the event again (``outbox``), or, with the sweep held back, the
    retry timer takes up the pending row (``timer``)."""
    settings = region_settings(azurite, ("east", "west"))
    east, west = settings["east"], settings["west"]
    port = free_port()
    base = {"REGISTRY_OUTBOX_GRACE_SECONDS": "0", "REGISTRY_OUTBOX_SWEEP_SECONDS": "1"}
    process = await asyncio.to_thread(start_registry, east, port, base, fault="kill_mid_replication")
    layers = [os.urandom(200_000 + i) for i in range(6)]
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
                      "layers": [descriptor(OCI_LAYER, layer) for layer in layers]}).encode()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", auth=(ADMIN_USER, ADMIN_PASSWORD),
                                 timeout=30) as client:
        for data in (config, *layers):
            start = await client.post("/v2/crash/app/blobs/uploads/")
            done = await client.put(start.headers["location"], params={"digest": digest_of(data)}, content=data)
            assert done.status_code == 201, done.text
        try:
            response = await client.put("/v2/crash/app/manifests/v1", content=raw,
                                        headers={"Content-Type": OCI_MANIFEST})
            assert response.status_code == 201, response.text
        except httpx.TransportError:
            pass  # killed before it answered: the manifest and its event committed all the same
    assert await asyncio.to_thread(process.wait, 30) == -signal.SIGKILL

    east_probe, west_probe = StorageProbe(east), StorageProbe(west)
    try:
        assert [row["RowKey"] for row in await pending_rows(east_probe)] != []  # the kill left it pending
        assert "t|v1" not in await repository_rows(west_probe, "crash/app")
        env = base if finisher == "outbox" else {
            "REGISTRY_OUTBOX_GRACE_SECONDS": "3600", "REGISTRY_BACKGROUND_JOBS": "true",
            "REGISTRY_REPLICATION_RETRY_SECONDS": "10"}
        process = await asyncio.to_thread(start_registry, east, port, env)
        try:
            for _ in range(300):  # at most 150 s: the timer runs once a minute
                if not await pending_rows(east_probe):
                    break
                await asyncio.sleep(0.5)
            assert await pending_rows(east_probe) == []
        finally:
            process.terminate()
            await asyncio.to_thread(process.wait, 30)
        east_rows = await repository_rows(east_probe, "crash/app")
        assert east_rows["t|v1"]["digest"] == digest_of(raw)
        assert await repository_rows(west_probe, "crash/app") == east_rows
        expected = {digest_of(data): digest_of(data) for data in (config, *layers)}
        assert await linked_blob_hashes(west_probe, "crash/app") == expected
        data_blobs = [name for name in await west_probe.blobs() if name.startswith("data/")]
        assert len(data_blobs) == len(expected)  # the copies made before the kill were not made twice
    finally:
        await east_probe.close()
        await west_probe.close()
