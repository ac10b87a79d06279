"""How copy_blob cuts a blob into blocks, which errors make it stream, and both paths over the
in-memory store (which passes the storage contract, Put Block From URL included)."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from shared.replication import copy
from shared.replication.copy import Blocks, copy_blob, server_side_refused
from shared.storage.clients import _bytes_sent
from shared.storage.memory import MemoryService, MemoryStorage
from shared.storage.memory.service import storage_error

MiB = 1024 * 1024


@pytest.mark.parametrize("size", [0, 1, 32 * MiB, 32 * MiB + 1, 2**31 - 1, 2**31 + 1, 2**32, 2**32 + 5 * MiB + 3,
                                  5 * 2**40 + 17])
def test_blocks_cover_every_byte_once_in_order_within_the_block_limit(size: int) -> None:
    blocks = Blocks(size, 32 * MiB)
    spans = [blocks.span(i) for i in range(blocks.count)]
    assert sum(length for _, length in spans) == size
    assert all(offset == index * blocks.block_bytes for index, (offset, _) in enumerate(spans))
    assert all(0 < length <= blocks.block_bytes for _, length in spans)
    assert blocks.count <= 50_000
    assert blocks.block_bytes % MiB == 0
    if spans:
        offset, length = spans[-1]
        assert offset + length == size


def test_a_blob_past_the_block_limit_gets_bigger_blocks_in_whole_mib() -> None:
    size = 5 * 2**40 + 17  # 5 TiB: 163,841 blocks of 32 MiB would be too many
    assert Blocks(size, 32 * MiB).block_bytes == 105 * MiB  # ceil(5 TiB / 50,000 / 1 MiB) = 105
    assert Blocks(50_000 * 32 * MiB, 32 * MiB).block_bytes == 32 * MiB


def test_block_ids_name_the_block_size_and_index_with_one_length() -> None:
    blocks = Blocks(2**32 + 1, 32 * MiB)
    ids = blocks.ids()
    assert len(ids) == 129 and len(set(ids)) == 129 and {len(i) for i in ids} == {32}
    assert base64.b64decode(ids[-1]).decode() == f"{32 * MiB:012x}{128:012x}"
    assert Blocks(2**32 + 1, 32 * MiB).ids() == ids  # a rerun stages the same ids
    assert Blocks(2**32 + 1, 4 * MiB).block_id(0) != ids[0]  # cut otherwise, never mixed up


def test_only_a_refusal_to_read_the_source_falls_back_to_streaming() -> None:
    assert server_side_refused(storage_error(ResourceNotFoundError, "CannotVerifyCopySource", "no", 404))
    assert server_side_refused(storage_error(HttpResponseError, "CannotVerifyCopySource", "no", 403))
    assert server_side_refused(storage_error(HttpResponseError, "NotImplemented", "no", 501))
    assert not server_side_refused(storage_error(ResourceNotFoundError, "ContainerNotFound", "no", 404))
    assert not server_side_refused(storage_error(HttpResponseError, "ServerBusy", "no", 503))
    assert not server_side_refused(ConnectionResetError())


def test_a_block_copied_from_a_url_gets_a_deadline_for_its_bytes() -> None:
    assert _bytes_sent({"Content-Length": "0", "x-ms-source-range": f"bytes={2**32}-{2**32 + 32 * MiB - 1}"}) \
        == 32 * MiB
    assert _bytes_sent({"Content-Length": "1024"}) == 1024
    assert _bytes_sent({}) == 0


@pytest.mark.parametrize("same_account", [True, False])
async def test_copy_blob_over_the_memory_store_is_byte_identical_either_way(
        same_account: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(copy, "SERVER_BLOCK_BYTES", 1000)
    monkeypatch.setattr(copy, "STREAM_BLOCK_BYTES", 300)
    service = MemoryService()
    source = MemoryStorage(service, "east")
    target = MemoryStorage(service if same_account else MemoryService(), "west")
    await source.ensure()
    await target.ensure()
    data = os.urandom(4321)
    await source.container.get_blob_client("data/a").upload_blob(data)
    await copy_blob(source, "data/a", target, "data/b", len(data), {"digest": "d"})
    blob = target.container.get_blob_client("data/b")
    assert hashlib.sha256(await (await blob.download_blob()).readall()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert (await blob.get_blob_properties()).metadata == {"digest": "d"}
