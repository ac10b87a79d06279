"""What uploads leave in storage: lost staged blocks, Int64 offsets and sizes, repairs of a bad
index entry, the purge's handling of what an interrupted completion left, and monolithic pushes."""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from typing import Any

import httpx
from azure.data.tables import EdmType, EntityProperty
from azure.storage.blob import BlobBlock

from shared.composition import Registry
from shared.settings import Settings
from tests.oci import digest_of, fetch_blob, push_blob
from tests.storage import StorageProbe


async def drop_staged_blocks(storage: StorageProbe, upload_id: str) -> None:
    """Lose an upload's uncommitted blocks, as storage does after a week or when the blob is removed."""
    blob = storage.clients.container.get_blob_client(f"data/{upload_id}")
    await blob.commit_block_list([])
    await blob.delete_blob()


def upload_id(location: str) -> str:
    """The upload id at the end of an upload URL."""
    return location.rsplit("/", 1)[1]


async def test_final_put_after_staged_blocks_were_lost_is_upload_invalid_and_keeps_nothing(
    client: httpx.AsyncClient, storage: StorageProbe
) -> None:
    data = os.urandom(5000)
    location = (await client.post("/v2/lost/blobs/uploads/")).headers["location"]
    assert (await client.patch(location, content=data[:3000])).status_code == 202
    await drop_staged_blocks(storage, upload_id(location))
    answer = await client.put(location, params={"digest": digest_of(data)}, content=data[3000:])
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"
    assert storage.is_empty(await storage.snapshot())
    uncommitted = [b.name async for b in storage.clients.container.list_blobs(include=["uncommittedblobs"])]
    assert uncommitted == []
    assert (await client.get(location)).status_code == 404
    # The client starts again and succeeds.
    await push_blob(client, "lost", data)
    assert await fetch_blob(client, "lost", digest_of(data)) == data


async def test_upload_offsets_past_2_gib_are_stored_as_int64(
    client: httpx.AsyncClient, storage: StorageProbe
) -> None:
    location = (await client.post("/v2/huge/blobs/uploads/")).headers["location"]
    table = storage.clients.uploads
    row = await table.get_entity(upload_id(location), "")
    far = 3 * 2**30 + 7  # as if 3 GiB had been sent already
    row["offset"] = EntityProperty(far, EdmType.INT64)
    await table.update_entity(row, mode="merge")
    status = await client.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == f"0-{far - 1}"
    patched = await client.patch(location, content=b"x" * 10, headers={"Content-Range": f"{far}-{far + 9}"})
    assert patched.status_code == 202, patched.text
    assert patched.headers["range"] == f"0-{far + 9}"
    stored = (await table.get_entity(upload_id(location), ""))["offset"]
    assert isinstance(stored, EntityProperty)
    assert (stored.value, stored.edm_type) == (far + 10, EdmType.INT64)


async def test_blob_sizes_in_the_index_and_links_are_int64(client: httpx.AsyncClient, storage: StorageProbe) -> None:
    data = os.urandom(100)
    await push_blob(client, "sizes", data)
    rows = [*await storage.rows("blobs"), *[r for r in await storage.rows("repos") if r["RowKey"].startswith("l|")]]
    assert len(rows) == 2
    for row in rows:
        assert isinstance(row["size"], EntityProperty)
        assert (row["size"].value, row["size"].edm_type) == (100, EdmType.INT64)


async def corrupt_index(storage: StorageProbe, digest: str, location: str) -> None:
    """Point ``digest``'s index entry at ``location``, as the old race could leave it."""
    await storage.clients.blobs.upsert_entity({"PartitionKey": digest, "RowKey": "", "size": 10,
                                               "location": location})


async def test_push_repairs_an_index_entry_whose_data_is_missing(
    client: httpx.AsyncClient, storage: StorageProbe
) -> None:
    data = os.urandom(10)
    assert (await client.get("/v2/")).status_code == 200  # opens the registry: its tables exist
    await corrupt_index(storage, digest_of(data), "data/" + "0" * 32)
    await push_blob(client, "repaired", data)
    assert await fetch_blob(client, "repaired", digest_of(data)) == data
    [entry] = await storage.rows("blobs")
    assert entry["location"] != "data/" + "0" * 32
    assert (await storage.blobs()) == {entry["location"]: 10}


async def test_push_repairs_an_index_entry_naming_other_bytes(
    client: httpx.AsyncClient, storage: StorageProbe
) -> None:
    other, data = os.urandom(10), os.urandom(10)
    await push_blob(client, "other", other)
    [bad] = await storage.rows("blobs")
    await corrupt_index(storage, digest_of(data), bad["location"])
    await push_blob(client, "repaired", data)
    assert await fetch_blob(client, "repaired", digest_of(data)) == data
    assert await fetch_blob(client, "other", digest_of(other)) == other
    locations = {r["PartitionKey"]: r["location"] for r in await storage.rows("blobs")}
    assert locations[digest_of(other)] == bad["location"] != locations[digest_of(data)]


async def test_monolithic_post_whose_length_disagrees_stores_nothing(
    client: httpx.AsyncClient, storage: StorageProbe
) -> None:
    data = os.urandom(1000)

    async def body() -> Any:
        yield data

    answer = await client.post("/v2/mono/blobs/uploads/", params={"digest": digest_of(data)}, content=body(),
                               headers={"Content-Length": "999"})
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["code"] == "SIZE_INVALID"
    assert (await client.head(f"/v2/mono/blobs/{digest_of(data)}")).status_code == 404
    assert storage.is_empty(await storage.snapshot())


async def test_purge_removes_committed_bytes_that_were_never_verified(
    settings: Settings, storage: StorageProbe
) -> None:
    registry = await Registry.open(settings)
    try:
        upload = await registry.uploads.start("unverified")
        blob = storage.clients.container.get_blob_client(f"data/{upload.id}")
        await blob.stage_block("YWFhYQ==", b"bytes nobody hashed")
        await blob.commit_block_list([BlobBlock("YWFhYQ==")])  # a completion that stopped before its check
        assert await registry.uploads.purge_stale(timedelta(seconds=-5)) == 1
    finally:
        await registry.close()
    assert storage.is_empty(await storage.snapshot())


async def test_purge_drops_a_leftover_copy_of_content_indexed_elsewhere(
    client: httpx.AsyncClient, settings: Settings, storage: StorageProbe
) -> None:
    data = os.urandom(64)
    await push_blob(client, "kept", data)
    [kept] = await storage.rows("blobs")
    registry = await Registry.open(settings)
    try:
        upload = await registry.uploads.start("leftover")
        blob = storage.clients.container.get_blob_client(f"data/{upload.id}")
        await blob.upload_blob(data, metadata={"digest": digest_of(data)})
        assert await registry.uploads.purge_stale(timedelta(seconds=-5)) == 1
    finally:
        await registry.close()
    assert await storage.blobs() == {kept["location"]: 64}
    assert hashlib.sha256(await (await storage.clients.container.get_blob_client(
        kept["location"]).download_blob()).readall()).hexdigest() == digest_of(data).split(":")[1]
    assert await storage.rows("uploads") == []


async def test_mount_of_content_whose_data_is_missing_falls_back_to_an_upload_that_repairs_it(
    client: httpx.AsyncClient, storage: StorageProbe
) -> None:
    data = os.urandom(300)
    digest = await push_blob(client, "source", data)
    [entry] = await storage.rows("blobs")
    await storage.clients.container.delete_blob(entry["location"])
    for params in ({"mount": digest, "from": "source"}, {"mount": digest}):
        answer = await client.post("/v2/target/blobs/uploads/", params=params)
        assert answer.status_code == 202, params
        assert (await client.head(f"/v2/target/blobs/{digest}")).status_code == 404
    await push_blob(client, "target", data)
    assert await fetch_blob(client, "target", digest) == data
    [repaired] = await storage.rows("blobs")
    assert repaired["location"] != entry["location"]
    assert (await client.post("/v2/third/blobs/uploads/", params={"mount": digest})).status_code == 201
    assert await fetch_blob(client, "third", digest) == data
