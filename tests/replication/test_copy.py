"""copy_blob and ensure_blob against real Azurite: two regions (storage prefixes) of one Azurite,
where storage copies server-side, and a region on a second Azurite, which cannot read the first
one's URLs, so the bytes are streamed instead."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobBlock
from starlette.applications import Starlette

from scripts.azurite import ROOT, Azurite
from shared.composition import create_app
from shared.oci.digest import Digest
from shared.replication import copy
from shared.replication.copy import copy_blob
from shared.replication.transfer import ensure_blob
from shared.storage import layout
from shared.storage.accounts import StorageAccount
from shared.storage.clients import StorageClients
from shared.storage.values import read_int
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, unique_prefix
from tests.oci import push_blob
from tests.replication.regions import region_settings

KiB = 1024
BLOCK = 256 * KiB  # both paths' block size in these tests, so a few MiB make several blocks


@pytest.fixture(autouse=True)
def small_blocks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("slow"):
        return  # the big copies run with the real block sizes
    monkeypatch.setattr(copy, "SERVER_BLOCK_BYTES", BLOCK)
    monkeypatch.setattr(copy, "STREAM_BLOCK_BYTES", BLOCK // 2)


async def _opened(connection_string: str) -> StorageClients:
    storage = StorageClients(StorageAccount(prefix=unique_prefix(), connection_string=connection_string))
    await storage.ensure()
    return storage


@pytest.fixture
async def east(azurite: Any) -> AsyncIterator[StorageClients]:
    storage = await _opened(azurite.connection_string)
    yield storage
    await storage.close()


@pytest.fixture
async def west(azurite: Any) -> AsyncIterator[StorageClients]:
    storage = await _opened(azurite.connection_string)
    yield storage
    await storage.close()


@pytest.fixture(scope="module")
def other_azurite() -> Iterator[Azurite]:
    with Azurite() as service:
        yield service


async def _put(storage: StorageClients, name: str, data: bytes) -> None:
    await storage.container.get_blob_client(name).upload_blob(data, metadata={"from": "source"})


async def _sha256(storage: StorageClients, name: str) -> str:
    hasher = hashlib.sha256()
    download = await storage.container.get_blob_client(name).download_blob()
    async for chunk in download.chunks():
        hasher.update(chunk)
    return hasher.hexdigest()


async def _block_sizes(storage: StorageClients, name: str) -> tuple[list[int], set[int]]:
    """Sizes of the committed blocks, and the block size their ids name (the first 12 hex digits)."""
    committed, _ = await storage.container.get_blob_client(name).get_block_list("committed")
    named = {int(base64.b64decode(block.id).decode()[:12], 16) for block in committed}
    return [block.size for block in committed], named


async def _names(storage: StorageClients) -> list[str]:
    return [blob.name async for blob in storage.container.list_blobs()]


async def test_a_copy_between_regions_of_one_azurite_is_staged_server_side_byte_identical_with_metadata(
        east: StorageClients, west: StorageClients) -> None:
    data = os.urandom(5 * BLOCK + 1234)
    await _put(east, "data/source", data)
    await copy_blob(east, "data/source", west, "data/copy", len(data), metadata={"digest": "sha256:abc"})
    assert await _sha256(west, "data/copy") == hashlib.sha256(data).hexdigest()
    properties = await west.container.get_blob_client("data/copy").get_blob_properties()
    assert (properties.size, properties.metadata) == (len(data), {"digest": "sha256:abc"})
    sizes, named = await _block_sizes(west, "data/copy")
    assert (sizes, named) == ([BLOCK] * 5 + [1234], {BLOCK})  # the server-side path's blocks
    assert await _names(west) == ["data/copy"]


async def test_an_empty_blob_copies_as_an_empty_blob_with_its_metadata(east: StorageClients,
                                                                       west: StorageClients) -> None:
    await _put(east, "data/empty", b"")
    await copy_blob(east, "data/empty", west, "data/copy", 0, metadata={"digest": "sha256:e3b0"})
    properties = await west.container.get_blob_client("data/copy").get_blob_properties()
    assert (properties.size, properties.metadata) == (0, {"digest": "sha256:e3b0"})


class _FailingBlob:
    """A target blob client whose ``after``-th Put Block From URL fails (as a crash would stop it)."""

    def __init__(self, inner: Any, calls: list[int], after: int) -> None:
        self._inner, self._calls, self._after = inner, calls, after

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def stage_block_from_url(self, *args: Any, **kwargs: Any) -> Any:
        self._calls.append(1)
        if len(self._calls) > self._after:
            raise ConnectionResetError("the copy stops here")
        return await self._inner.stage_block_from_url(*args, **kwargs)


class _FailingStorage:
    def __init__(self, inner: StorageClients, after: int) -> None:
        self._inner, self.calls, self._after = inner, list[int](), after
        outer = self

        class Container:
            def __getattr__(self, name: str) -> Any:
                return getattr(inner.container, name)

            def get_blob_client(self, blob: str) -> _FailingBlob:
                return _FailingBlob(inner.container.get_blob_client(blob), outer.calls, outer._after)

        self.container = Container()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_an_interrupted_copy_commits_nothing_and_a_rerun_leaves_one_complete_blob(
        east: StorageClients, west: StorageClients, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(copy, "SERVER_IN_FLIGHT", 1)  # stop after exactly three staged blocks
    data = os.urandom(8 * BLOCK + 99)
    await _put(east, "data/source", data)
    failing = _FailingStorage(west, after=3)
    with pytest.raises(ConnectionResetError):
        await copy_blob(east, "data/source", failing, "data/copy", len(data), metadata={"digest": "d"})  # type: ignore[arg-type]
    blob = west.container.get_blob_client("data/copy")
    with pytest.raises(ResourceNotFoundError):
        await blob.get_blob_properties()
    _, staged = await blob.get_block_list("uncommitted")
    assert len(staged) == 3
    await copy_blob(east, "data/source", west, "data/copy", len(data), metadata={"digest": "d"})
    assert await _sha256(west, "data/copy") == hashlib.sha256(data).hexdigest()
    committed, staged = await blob.get_block_list("all")
    assert (len(committed), staged) == (9, [])
    assert await _names(west) == ["data/copy"]


async def test_a_target_on_another_azurite_is_refused_server_side_and_streamed_byte_identical(
        east: StorageClients, other_azurite: Azurite) -> None:
    data = os.urandom(3 * BLOCK + 7)
    await _put(east, "data/source", data)
    far = await _opened(other_azurite.connection_string)
    try:
        blob = far.container.get_blob_client("probe")
        with pytest.raises(HttpResponseError) as refused:  # what the fallback answers to
            await blob.stage_block_from_url("AAAA", await east.read_url("data/source", 60), 0, 10)
        assert refused.value.error_code == "CannotVerifyCopySource"
        await copy_blob(east, "data/source", far, "data/copy", len(data), metadata={"digest": "d"})
        assert await _sha256(far, "data/copy") == hashlib.sha256(data).hexdigest()
        properties = await far.container.get_blob_client("data/copy").get_blob_properties()
        assert properties.metadata == {"digest": "d"}
        sizes, named = await _block_sizes(far, "data/copy")
        assert (sizes, named) == ([BLOCK // 2] * 6 + [7], {BLOCK // 2})  # the streamed path's blocks
    finally:
        await far.close()


@pytest.fixture
async def region_apps(azurite: Any) -> AsyncIterator[dict[str, Starlette]]:
    apps = {name: create_app(settings) for name, settings in region_settings(azurite).items()}
    yield apps
    for application in apps.values():
        if application.state.registry is not None:
            await application.state.registry.close()


async def _storages(apps: dict[str, Starlette]) -> dict[str, StorageClients]:
    found = {}
    for name, application in apps.items():
        storage = StorageClients(StorageAccount.from_settings(application.state.settings))
        await storage.ensure()
        found[name] = storage
    return found


async def _push_east(apps: dict[str, Starlette], data: bytes) -> str:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=apps["east"]), base_url="http://east.test",
                                 auth=(ADMIN_USER, ADMIN_PASSWORD)) as east:
        return await push_blob(east, "team/app", data)


async def test_ensure_blob_brings_a_pushed_blob_into_west_indexed_sound_and_linked(
        region_apps: dict[str, Starlette]) -> None:
    data = os.urandom(3 * BLOCK + 5)
    digest = await _push_east(region_apps, data)
    regions = await _storages(region_apps)
    try:
        east, west = regions["east"], regions["west"]
        found = await ensure_blob(east, west, Digest.parse(digest), repository="team/app")
        name = "data/" + digest.replace(":", "-")
        assert found is not None and (found.location, found.size) == (name, len(data))
        index = await west.blobs.get_entity(digest, "")
        assert (index["location"], read_int(index["size"])) == (name, len(data))
        link = await west.repos.get_entity(layout.encode_repository("team/app"), layout.link_key(digest))
        assert link["location"] == name
        assert await _sha256(west, name) == hashlib.sha256(data).hexdigest()
        assert (await west.container.get_blob_client(name).get_blob_properties()).metadata == {"digest": digest}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=region_apps["west"]),
                                     base_url="http://west.test", auth=(ADMIN_USER, ADMIN_PASSWORD)) as client:
            served = await client.get(f"/v2/team/app/blobs/{digest}")
            assert served.status_code == 307
            async with httpx.AsyncClient() as plain:
                assert (await plain.get(served.headers["location"])).content == data
    finally:
        for storage in regions.values():
            await storage.close()


async def test_ensure_blob_twice_and_three_at_once_leave_one_index_row_and_one_data_blob(
        region_apps: dict[str, Starlette]) -> None:
    data = os.urandom(4 * BLOCK + 3)
    digest = await _push_east(region_apps, data)
    regions = await _storages(region_apps)
    try:
        east, west = regions["east"], regions["west"]
        results = await asyncio.gather(*(ensure_blob(east, west, Digest.parse(digest), "team/app") for _ in range(3)))
        again = await ensure_blob(east, west, Digest.parse(digest), "team/app")
        name = "data/" + digest.replace(":", "-")
        assert {r.location for r in [*results, again] if r is not None} == {name}
        assert [row["PartitionKey"] async for row in west.blobs.list_entities()] == [digest]
        assert await _names(west) == [name]
        assert await _sha256(west, name) == hashlib.sha256(data).hexdigest()
        links = [row async for row in west.repos.list_entities() if row["RowKey"].startswith("l|")]
        assert [row["location"] for row in links] == [name]
    finally:
        for storage in regions.values():
            await storage.close()


async def _put_random(storage: StorageClients, name: str, size: int) -> str:
    """Stage ``size`` random bytes as ``name`` in 8 MiB blocks; returns their SHA-256."""
    blob, hasher, ids = storage.container.get_blob_client(name), hashlib.sha256(), []
    for index, offset in enumerate(range(0, size, 8 * 1024 * KiB)):
        data = os.urandom(min(8 * 1024 * KiB, size - offset))
        hasher.update(data)
        ids.append(base64.b64encode(f"{index:08x}".encode()).decode())
        await blob.stage_block(ids[-1], data)
    await blob.commit_block_list([BlobBlock(block_id=i) for i in ids])
    return hasher.hexdigest()


@pytest.mark.slow
@pytest.mark.parametrize("path", ["server-side", "streamed"])
async def test_a_1_gib_copy_keeps_the_process_peak_memory_flat(path: str, east: StorageClients, azurite: Any,
                                                                other_azurite: Azurite) -> None:
    size = 1024 * 1024 * KiB
    digest = await _put_random(east, "data/big", size)
    target = azurite.connection_string if path == "server-side" else other_azurite.connection_string
    prefix = unique_prefix()
    run = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.replication.copy_process", azurite.connection_string, east.prefix, target,
        prefix, "data/big", str(size), stdout=asyncio.subprocess.PIPE, cwd=ROOT)
    output, _ = await run.communicate()
    assert run.returncode == 0
    peak = json.loads(output)
    # The RSS peak may predate the copy (imports, connections): what the copy itself holds shows as a
    # new peak above the earlier one, and as the Python heap's peak while it ran.
    grew_mib = (peak["after_kib"] - max(peak["before_kib"], peak["peak_before_kib"])) / 1024
    print(f"{path} copy of 1 GiB: RSS {peak['before_kib'] / 1024:.1f} MiB before (peak so far "
          f"{peak['peak_before_kib'] / 1024:.1f}), peak after {peak['after_kib'] / 1024:.1f} MiB; Python heap peak "
          f"while copying {peak['heap_peak_kib'] / 1024:.1f} MiB")
    assert grew_mib < 64 and peak["heap_peak_kib"] < 64 * 1024
    copied = await _opened_prefix(target, prefix)
    try:
        assert await _sha256(copied, "data/big") == digest
        sizes, _ = await _block_sizes(copied, "data/big")
        assert len(sizes) == (32 if path == "server-side" else 256)  # 32 MiB blocks, or 4 MiB pieces
    finally:
        await copied.close()


async def _opened_prefix(connection_string: str, prefix: str) -> StorageClients:
    return StorageClients(StorageAccount(prefix=prefix, connection_string=connection_string))
