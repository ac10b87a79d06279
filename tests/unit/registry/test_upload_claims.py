"""An upload session ends once: whatever ends it claims its row first, and only the claimant
touches the data blob (shared/registry/uploads.py), checked over the in-memory store."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from shared.oci.digest import Digest
from shared.registry.blobs import BlobService
from shared.registry.errors import DigestMismatch, UploadOutOfOrder, UploadUnknown
from shared.registry.uploads import UploadService
from shared.storage.blocks import commit_once
from shared.storage.memory import MemoryStorage
from tests.clock import ManualClock


def _sha256(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


async def _body(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


@pytest.fixture
def uploads(memory: MemoryStorage) -> UploadService:
    return UploadService(memory, BlobService(memory, 600), block_size=4)


async def _rows(memory: MemoryStorage, table: str) -> list[dict[str, object]]:
    return [dict(row) async for row in memory.table(table).list_entities()]


async def _blobs(memory: MemoryStorage) -> dict[str, bytes]:
    container = memory.container
    return {b.name: await (await container.get_blob_client(b.name).download_blob()).readall()
            async for b in container.list_blobs()}


async def test_of_two_final_puts_racing_one_commits_and_the_other_finds_no_upload(
        memory: MemoryStorage, uploads: UploadService) -> None:
    data = b"0123456789"
    upload = await uploads.append(await uploads.start("app"), _body(data), 0, len(data))
    results = await asyncio.gather(uploads.complete(upload, _sha256(data)), uploads.complete(upload, _sha256(data)),
                                   return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and type(errors[0]) is UploadUnknown
    assert await _blobs(memory) == {f"data/{upload.id}": data}
    [index] = await _rows(memory, "blobs")
    assert (index["PartitionKey"], index["location"]) == (str(_sha256(data)), f"data/{upload.id}")
    assert await _rows(memory, "uploads") == []  # the winner forgot the session


async def test_a_patch_or_get_after_the_claim_finds_no_upload(memory: MemoryStorage, uploads: UploadService) -> None:
    upload = await uploads.append(await uploads.start("app"), _body(b"abcd"), 0, 4)
    await uploads.complete(upload, _sha256(b"abcd"))
    with pytest.raises(UploadUnknown):
        await uploads.get("app", upload.id)
    with pytest.raises(UploadUnknown):
        await uploads.append(upload, _body(b"more"), 4, 4)  # its state update finds the row gone
    assert await _blobs(memory) == {f"data/{upload.id}": b"abcd"}  # committed content untouched


async def test_a_request_holding_a_stale_view_answers_416_with_the_current_range(uploads: UploadService) -> None:
    upload = await uploads.start("app")
    moved = await uploads.append(upload, _body(b"abcd"), 0, 4)
    with pytest.raises(UploadOutOfOrder) as raised:
        await uploads.append(upload, _body(b"wxyz"), 0, 4)  # read before the other PATCH saved
    assert raised.value.size == 4  # the API answers 416 with Range: 0-3
    assert (await uploads.get("app", upload.id)).offset == moved.offset == 4


async def test_a_cancel_outlasts_a_patch_that_moved_the_upload_and_drops_its_blocks(
        memory: MemoryStorage, uploads: UploadService) -> None:
    upload = await uploads.start("app")
    await uploads.append(upload, _body(b"abcdefgh"), 0, 8)  # another request moves it on
    await uploads.cancel(upload)  # with the stale view: retried on the fresh row
    assert await _rows(memory, "uploads") == []
    with pytest.raises(Exception, match="does not exist"):
        await memory.container.get_blob_client(f"data/{upload.id}").get_block_list("all")


async def test_a_wrong_digest_ends_the_upload_and_stores_nothing(memory: MemoryStorage,
                                                                 uploads: UploadService) -> None:
    upload = await uploads.append(await uploads.start("app"), _body(b"abcd"), 0, 4)
    with pytest.raises(DigestMismatch):
        await uploads.complete(upload, _sha256(b"other"))
    assert await _rows(memory, "uploads") == [] and await _blobs(memory) == {}


async def test_the_purge_claims_a_session_a_dead_instance_left_mid_commit_and_indexes_its_content(
        memory: MemoryStorage, uploads: UploadService, clock: ManualClock) -> None:
    clock.advance(-3 * 3600)  # the session's row is written three hours ago
    upload = await uploads.append(await uploads.start("app"), _body(b"abcd"), 0, 4)
    # The instance ending it claimed the row, committed the verified blocks, and died before indexing.
    await uploads._claim(upload)
    blob = memory.container.get_blob_client(f"data/{upload.id}")
    await commit_once(blob, upload.block_ids(), {"digest": str(_sha256(b"abcd"))})
    clock.advance(3 * 3600)
    assert await uploads.purge_stale(timedelta(hours=1)) == 1
    [index] = await _rows(memory, "blobs")
    assert index["location"] == f"data/{upload.id}"
    assert await _rows(memory, "uploads") == []
    assert await uploads.purge_stale(timedelta(hours=1)) == 0


async def test_the_purge_leaves_a_session_in_use_alone(memory: MemoryStorage, uploads: UploadService,
                                                       clock: ManualClock) -> None:
    clock.advance(-3 * 3600)
    stale = await uploads.start("app")
    clock.advance(3 * 3600)
    fresh = await uploads.start("app")
    assert await uploads.purge_stale(timedelta(hours=1)) == 1
    assert [row["PartitionKey"] for row in await _rows(memory, "uploads")] == [fresh.id]
    with pytest.raises(UploadUnknown):
        await uploads.get("app", stale.id)
