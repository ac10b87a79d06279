"""The stale-upload purge run by the timer function."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx

from shared.composition import Registry
from shared.registry.maintenance import purge_stale_uploads
from shared.settings import Settings
from shared.storage.blocks import commit_once
from tests.oci import digest_of, push_blob
from tests.storage import StorageProbe


async def test_purge_cancels_stale_uploads_and_keeps_content(
    client: httpx.AsyncClient, settings: Settings, storage: StorageProbe
) -> None:
    digest = await push_blob(client, "kept", b"committed content")
    location = (await client.post("/v2/stale/blobs/uploads/")).headers["location"]
    assert (await client.patch(location, content=b"half an upload")).status_code == 202
    assert len(await storage.rows("uploads")) == 1
    registry = await Registry.open(settings)
    try:
        assert await purge_stale_uploads(registry.container) == 0  # nothing is old enough yet
        assert await registry.uploads.purge_stale(timedelta(seconds=-5)) == 1
    finally:
        await registry.close()
    assert await storage.rows("uploads") == []
    assert (await client.get(location)).status_code == 404
    assert (await client.head(f"/v2/kept/blobs/{digest}")).status_code == 200


async def test_purge_keeps_data_committed_before_a_crash(settings: Settings, storage: StorageProbe) -> None:
    registry = await Registry.open(settings)
    try:
        upload = await registry.uploads.start("crashy")
        data = b"content whose upload row survived a crash"

        async def body() -> AsyncIterator[bytes]:
            yield data

        upload = await registry.uploads.append(upload, body(), None, None)
        # Commit as complete() does, but "crash" before the index and upload rows are written.
        blob = registry.storage.container.get_blob_client(f"data/{upload.id}")
        await commit_once(blob, upload.block_ids(), {"digest": digest_of(data)})
        assert await registry.uploads.purge_stale(timedelta(seconds=-5)) == 1
        assert (await storage.blobs()) == {f"data/{upload.id}": len(data)}
        assert [(r["PartitionKey"], r["location"]) for r in await storage.rows("blobs")] == [
            (digest_of(data), f"data/{upload.id}")]
    finally:
        await registry.close()
