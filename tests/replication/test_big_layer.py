"""A 1 GiB layer replicates with the replicating process's peak memory flat: its bytes move
between the regions' storage in blocks (server-side on one Azurite), never through its memory."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import sys
import uuid
from dataclasses import replace

import httpx
import pytest
from azure.storage.blob import BlobBlock

from scripts.azurite import ROOT, Azurite
from shared.composition import configure, create_app
from shared.events.envelope import to_event_grid
from shared.oci.digest import Digest
from shared.registry.blobs import BlobInfo, BlobService
from shared.storage import layout
from shared.storage.values import read_int
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.manifest_helpers import registry_of_app
from tests.oci import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, digest_of, push_blob
from tests.replication.harness import event
from tests.replication.regions import region_settings
from tests.storage import StorageProbe

pytestmark = pytest.mark.slow
MiB = 1024 * 1024
SIZE = 1024 * MiB
PIECE = 8 * MiB


async def test_a_1_gib_layer_replicates_with_the_process_peak_memory_flat(azurite: Azurite) -> None:
    settings = region_settings(azurite)
    east_settings = settings["east"]
    held_back = replace(configure(environ=east_settings.source), consumers=())  # replicated below, by hand
    app = create_app(east_settings, held_back)
    registry = await registry_of_app(app)
    west = StorageProbe(settings["west"])
    try:
        # The 1 GiB layer, written into east's storage as an upload would leave it, and linked.
        name, hasher, ids = layout.data_blob(str(uuid.uuid4())), hashlib.sha256(), []
        blob = registry.storage.container.get_blob_client(name)
        for index in range(SIZE // PIECE):
            data = os.urandom(PIECE)
            hasher.update(data)
            ids.append(base64.b64encode(f"{index:08x}".encode()).decode())
            await blob.stage_block(ids[-1], data)
        layer = "sha256:" + hasher.hexdigest()
        await blob.commit_block_list([BlobBlock(block_id=i) for i in ids], metadata={"digest": layer})
        blobs = BlobService(registry.storage, 600)
        info = await blobs.index(BlobInfo(Digest.parse(layer), SIZE, name))
        await blobs.link("big/layer", info)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://east.test",
                                     auth=(ADMIN_USER, ADMIN_PASSWORD)) as client:
            config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
            await push_blob(client, "big/layer", config)
            raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                              "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
                              "layers": [{"mediaType": OCI_LAYER, "digest": layer, "size": SIZE}]}).encode()
            put = await client.put("/v2/big/layer/manifests/v1", content=raw, headers={"Content-Type": OCI_MANIFEST})
            assert put.status_code == 201, put.text

        envelope = to_event_grid(event("push", "big/layer", digest_of(raw), "v1", OCI_MANIFEST), "east", None)
        run = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.replication.replicate_process", json.dumps(dict(east_settings.source)),
            json.dumps(envelope), stdout=asyncio.subprocess.PIPE, cwd=ROOT)
        output, _ = await run.communicate()
        assert run.returncode == 0
        peak = json.loads(output)
        grew_mib = (peak["after_kib"] - max(peak["before_kib"], peak["peak_before_kib"])) / 1024
        print(f"replicating a 1 GiB layer: RSS {peak['before_kib'] / 1024:.1f} MiB before (peak so far "
              f"{peak['peak_before_kib'] / 1024:.1f}), peak after {peak['after_kib'] / 1024:.1f} MiB "
              f"(+{grew_mib:.1f} MiB); Python heap peak while replicating {peak['heap_peak_kib'] / 1024:.1f} MiB")
        assert grew_mib < 64 and peak["heap_peak_kib"] < 64 * 1024

        # West holds the layer in its own storage, byte for byte, and the manifest and tag.
        index = {r["PartitionKey"]: r for r in await west.rows("blobs")}
        assert read_int(index[layer]["size"]) == SIZE  # Edm.Int64
        copied = west.clients.container.get_blob_client(index[layer]["location"])
        received = hashlib.sha256()
        async for chunk in (await copied.download_blob()).chunks():
            received.update(chunk)
        assert "sha256:" + received.hexdigest() == layer
        rows = {r["RowKey"]: r for r in await west.rows("repos") if r["PartitionKey"] == "big0layer"}
        assert rows["t|v1"]["digest"] == digest_of(raw) and f"m|{digest_of(raw)}" in rows
    finally:
        await west.close()
        await registry.close()
