"""The blob contract: staged and committed blocks, conditions, ranged downloads, properties, listing."""

from __future__ import annotations

import base64

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobBlock, ContentSettings, StorageErrorCode

from tests.contract.conftest import Backend

STALE = '"0x8D000000000000"'


def _id(n: int) -> str:
    return base64.b64encode(f"{n:08x}".encode()).decode()


async def _download(blob: object, **kwargs: object) -> bytes:
    downloader = await blob.download_blob(**kwargs)  # type: ignore[attr-defined]
    return bytes(await downloader.readall())


async def test_staged_blocks_are_invisible_until_a_commit_names_them(backend: Backend) -> None:
    blob = backend.storage.container.get_blob_client("data/one")
    await blob.stage_block(_id(1), b"hello ")
    await blob.stage_block(_id(2), b"world")
    await blob.stage_block(_id(3), b"dropped")
    with pytest.raises(ResourceNotFoundError):
        await blob.get_blob_properties()
    assert [b.name async for b in backend.storage.container.list_blobs()] == []
    committed, staged = await blob.get_block_list("all")
    assert (committed, sorted((b.id, b.size) for b in staged)) == ([], [(_id(1), 6), (_id(2), 5), (_id(3), 7)])
    result = await blob.commit_block_list([BlobBlock(_id(1)), BlobBlock(_id(2))], metadata={"digest": "d"},
                                          content_settings=ContentSettings(content_type="application/octet-stream"))
    properties = await blob.get_blob_properties()
    assert (properties.size, properties.metadata, properties.etag) == (11, {"digest": "d"}, result["etag"])
    assert await _download(blob) == b"hello world"
    committed, staged = await blob.get_block_list("all")
    assert ([(b.id, b.size) for b in committed], staged) == ([(_id(1), 6), (_id(2), 5)], [])
    assert [b.name async for b in backend.storage.container.list_blobs()] == ["data/one"]


async def test_a_commit_naming_a_block_not_staged_fails_and_stores_nothing(backend: Backend) -> None:
    blob = backend.storage.container.get_blob_client("data/lost")
    await blob.stage_block(_id(1), b"x")
    with pytest.raises(HttpResponseError) as raised:
        await blob.commit_block_list([BlobBlock(_id(1)), BlobBlock(_id(2))])
    assert raised.value.error_code == StorageErrorCode.INVALID_BLOCK_LIST
    with pytest.raises(ResourceNotFoundError):
        await blob.get_blob_properties()


async def test_a_commit_if_missing_never_touches_committed_content(backend: Backend) -> None:
    blob = backend.storage.container.get_blob_client("data/once")
    await blob.stage_block(_id(1), b"first")
    await blob.commit_block_list([BlobBlock(_id(1))], match_condition=MatchConditions.IfMissing)
    await blob.stage_block(_id(2), b"second")
    with pytest.raises(ResourceExistsError):
        await blob.commit_block_list([BlobBlock(_id(2))], match_condition=MatchConditions.IfMissing)
    with pytest.raises(ResourceExistsError):
        await blob.upload_blob(b"third")
    assert await _download(blob) == b"first"
    await blob.upload_blob(b"fourth", overwrite=True)
    assert await _download(blob) == b"fourth"


async def test_downloads_read_ranges_and_hold_to_an_etag(backend: Backend) -> None:
    blob = backend.storage.container.get_blob_client("data/range")
    etag = (await blob.upload_blob(b"0123456789"))["etag"]
    assert await _download(blob, offset=2, length=3) == b"234"
    assert await _download(blob, offset=8, length=100) == b"89"
    assert await _download(blob, offset=4) == b"456789"
    assert await _download(blob, offset=3, etag=etag, match_condition=MatchConditions.IfNotModified) == b"3456789"
    chunks = [chunk async for chunk in (await blob.download_blob(offset=0, length=10)).chunks()]
    assert b"".join(chunks) == b"0123456789"
    with pytest.raises(HttpResponseError) as raised:
        await blob.download_blob(offset=11, length=1)
    assert raised.value.status_code == 416
    with pytest.raises(ResourceModifiedError):
        await blob.download_blob(etag=STALE, match_condition=MatchConditions.IfNotModified)
    with pytest.raises(ResourceNotFoundError):
        await backend.storage.container.get_blob_client("data/none").download_blob()


async def test_metadata_and_deletes_hold_to_an_etag(backend: Backend) -> None:
    blob = backend.storage.container.get_blob_client("data/meta")
    etag = (await blob.upload_blob(b"abc"))["etag"]
    with pytest.raises(ResourceModifiedError):
        await blob.set_blob_metadata({"digest": "x"}, etag=STALE, match_condition=MatchConditions.IfNotModified)
    changed = await blob.set_blob_metadata({"digest": "y"}, etag=etag, match_condition=MatchConditions.IfNotModified)
    assert changed["etag"] != etag
    assert (await blob.get_blob_properties()).metadata == {"digest": "y"}
    with pytest.raises(ResourceModifiedError):
        await blob.delete_blob(etag=etag, match_condition=MatchConditions.IfNotModified)
    await blob.delete_blob(etag=changed["etag"], match_condition=MatchConditions.IfNotModified)
    with pytest.raises(ResourceNotFoundError):
        await blob.delete_blob()
    with pytest.raises(ResourceNotFoundError):
        await blob.set_blob_metadata({"a": "b"})


async def test_deleting_a_blob_of_staged_blocks_drops_them(backend: Backend) -> None:
    blob = backend.storage.container.get_blob_client("data/staged")
    await blob.stage_block(_id(1), b"x")
    await blob.delete_blob()
    with pytest.raises(ResourceNotFoundError):
        await blob.get_block_list("all")


async def test_an_empty_commit_drops_staged_blocks_and_leaves_an_empty_blob(backend: Backend) -> None:
    blob = backend.storage.container.get_blob_client("data/empty")
    await blob.stage_block(_id(1), b"x")
    result = await blob.commit_block_list([], match_condition=MatchConditions.IfMissing)
    assert (await blob.get_blob_properties()).size == 0
    assert await _download(blob) == b""
    assert await blob.get_block_list("all") == ([], [])
    await blob.delete_blob(etag=result["etag"], match_condition=MatchConditions.IfNotModified)
    assert [b.name async for b in backend.storage.container.list_blobs()] == []


async def test_blobs_are_listed_by_name(backend: Backend) -> None:
    container = backend.storage.container
    for name in ("manifests/sha256/b", "data/z", "data/a"):
        await container.get_blob_client(name).upload_blob(name.encode())
    assert [(b.name, b.size) async for b in container.list_blobs()] == [
        ("data/a", 6), ("data/z", 6), ("manifests/sha256/b", 18)]
    assert [b.name async for b in container.list_blobs(name_starts_with="data/")] == ["data/a", "data/z"]


async def test_a_block_staged_from_a_url_holds_that_range_of_the_source(backend: Backend) -> None:
    await backend.storage.container.get_blob_client("data/source").upload_blob(b"0123456789")
    url = await backend.storage.read_url("data/source", 60)
    blob = backend.storage.container.get_blob_client("data/copy")
    await blob.stage_block_from_url(_id(1), url, source_offset=2, source_length=5)
    await blob.stage_block_from_url(_id(2), url, source_offset=9, source_length=1)
    await blob.commit_block_list([BlobBlock(_id(1)), BlobBlock(_id(2))])
    assert await _download(blob) == b"234569"


async def test_a_block_from_the_url_of_a_missing_blob_cannot_verify_its_source(backend: Backend) -> None:
    url = await backend.storage.read_url("data/missing", 60)
    with pytest.raises(HttpResponseError) as refused:
        await backend.storage.container.get_blob_client("data/copy").stage_block_from_url(_id(1), url, 0, 4)
    assert refused.value.error_code == StorageErrorCode.CANNOT_VERIFY_COPY_SOURCE
