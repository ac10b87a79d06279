"""Lock checks (shared/registry/locks.py): a flag on the repository, a tag or a manifest refuses
what it forbids, a missing flag allows it, and read locks may be served from a short cache.
Rows are written straight into the in-memory store, as ACR's ``changeableAttributes`` leave them."""

from __future__ import annotations

from typing import Any

import pytest

from shared.errors import Locked
from shared.kernel.operations import Operation
from shared.registry import locks
from shared.registry.locks import LockService
from shared.storage.memory import MemoryStorage

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


async def _put(memory: MemoryStorage, key: str, partition: str = "apps0web", **properties: Any) -> None:
    await memory.repos.upsert_entity({"PartitionKey": partition, "RowKey": key, **properties})


@pytest.fixture
async def service(memory: MemoryStorage) -> LockService:
    await _put(memory, "apps0web", "_catalog", name="apps/web")
    await _put(memory, f"m|{DIGEST}", digest=DIGEST, media_type="m", size=1)
    await _put(memory, f"m|{OTHER}", digest=OTHER, media_type="m", size=1)
    await _put(memory, "t|v1", digest=DIGEST, media_type="m", size=1)
    await _put(memory, "t|v2", digest=OTHER, media_type="m", size=1)
    return LockService(memory)


async def _allowed(service: LockService, operation: str, reference: str = "") -> bool:
    try:
        await service.check(Operation(operation), "apps/web", reference)
    except Locked:
        return False
    return True


async def test_nothing_is_refused_without_flags_nor_by_flags_that_are_true(memory: MemoryStorage,
                                                                          service: LockService) -> None:
    await _put(memory, "t|v1", digest=DIGEST, can_write=True, can_delete=True, can_read=True)
    for operation, reference in [("read_manifest", "v1"), ("write_manifest", "v1"), ("delete_tag", "v1"),
                                 ("delete_manifest", DIGEST), ("read_blob", ""), ("start_upload", ""),
                                 ("delete_repository", "")]:
        assert await _allowed(service, operation, reference), operation


async def test_a_repository_flag_governs_every_operation_of_its_kind(memory: MemoryStorage,
                                                                   service: LockService) -> None:
    await _put(memory, "apps0web", "_catalog", can_write=False)
    assert not await _allowed(service, "start_upload")
    assert not await _allowed(service, "write_manifest", "v9")
    assert await _allowed(service, "delete_tag", "v1") and await _allowed(service, "read_blob")


async def test_a_tag_flag_governs_that_tag_only(memory: MemoryStorage, service: LockService) -> None:
    await _put(memory, "t|v1", digest=DIGEST, can_delete=False, can_write=False)
    assert not await _allowed(service, "delete_tag", "v1")
    assert not await _allowed(service, "write_manifest", "v1")
    assert await _allowed(service, "delete_tag", "v2") and await _allowed(service, "write_manifest", "v2")


async def test_a_manifest_cannot_be_deleted_while_a_tag_naming_it_is_delete_locked(
        memory: MemoryStorage, service: LockService) -> None:
    await _put(memory, "t|v1", digest=DIGEST, can_delete=False)
    assert not await _allowed(service, "delete_manifest", DIGEST)
    assert await _allowed(service, "delete_manifest", OTHER)


async def test_a_read_by_tag_follows_the_tag_to_its_manifest_and_hands_the_tag_row_on(
        memory: MemoryStorage, service: LockService) -> None:
    await _put(memory, f"m|{DIGEST}", digest=DIGEST, can_read=False)
    assert not await _allowed(service, "read_manifest", "v1")
    seen: dict[str, Any] = {}
    await service.check("read_manifest", "apps/web", "v2", seen)
    assert list(seen) == ["t|v2"] and seen["t|v2"].digest == OTHER


async def test_read_flags_may_come_from_the_cache_for_a_while_write_flags_never(
        memory: MemoryStorage, service: LockService, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(locks.time, "monotonic", lambda: now[0])
    assert await _allowed(service, "read_manifest", DIGEST)
    await _put(memory, f"m|{DIGEST}", digest=DIGEST, can_read=False, can_write=False)
    assert await _allowed(service, "read_manifest", DIGEST)  # cached
    assert not await _allowed(service, "write_manifest", DIGEST)  # read fresh
    now[0] += locks.READ_CACHE_SECONDS + 0.1
    assert not await _allowed(service, "read_manifest", DIGEST)
    service.forget()
    await _put(memory, f"m|{DIGEST}", digest=DIGEST, can_read=True)
    assert await _allowed(service, "read_manifest", DIGEST)  # this process changed it: nothing cached
