"""The tag commit (shared/registry/commit.py): the tag row is replaced only at the ETag read, so a
competing write between the read and the transaction makes it retry on fresh rows; a push that
finds its tag moved by a later push orders itself before it. Over the in-memory store, with the
competing write forced just before the transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from azure.data.tables import EdmType, EntityProperty

from shared.errors import Locked, Unavailable
from shared.events.null import NullEventSink
from shared.registry import commit
from shared.registry.commit import Commit, Committer
from shared.storage.memory import MemoryStorage
from shared.storage.rows import ManifestRow

REPO, PARTITION = "apps/web", "apps0web"  # "/" is stored as "0"


class Competing:
    """The repos table, with a write of someone else's run before chosen transactions."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.transactions = 0
        self.before: list[Callable[[], Awaitable[None]]] = []
        self.always: Callable[[], Awaitable[None]] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.table, name)

    async def submit_transaction(self, operations: Any, **kwargs: Any) -> Any:
        self.transactions += 1
        if self.before:
            await self.before.pop(0)()
        if self.always is not None:
            await self.always()
        return await self.table.submit_transaction(operations, **kwargs)


def _manifest(n: int) -> ManifestRow:
    digest = "sha256:" + f"{n:02x}" * 32
    return ManifestRow(REPO, digest, "application/vnd.oci.image.manifest.v1+json", 100 + n, f"m{n}".encode())


async def _row(memory: MemoryStorage, key: str) -> dict[str, Any]:
    return dict(await memory.repos.get_entity(PARTITION, key))


@pytest.fixture
def repos(memory: MemoryStorage) -> Competing:
    competing = Competing(memory.repos)
    memory.repos = competing  # type: ignore[assignment]
    return competing


async def test_a_first_push_writes_the_manifest_and_its_tag_naming_it(memory: MemoryStorage) -> None:
    await Committer(memory, NullEventSink()).commit(Commit(_manifest(1), "v1", None, ()))
    tag = await _row(memory, "t|v1")
    assert {k: tag[k] for k in ("digest", "media_type", "size", "content")} == {
        "digest": "sha256:" + "01" * 32, "media_type": "application/vnd.oci.image.manifest.v1+json",
        "size": EntityProperty(101, EdmType.INT64), "content": b"m1"}
    assert tag["created"] == tag["updated"]
    assert (await _row(memory, "m|sha256:" + "01" * 32))["size"] == EntityProperty(101, EdmType.INT64)


async def test_a_lock_set_between_the_read_and_the_commit_is_kept(memory: MemoryStorage, repos: Competing) -> None:
    await Committer(memory, NullEventSink()).commit(Commit(_manifest(1), "v1", None, ()))

    async def lock_the_tag() -> None:
        await repos.table.update_entity({"PartitionKey": PARTITION, "RowKey": "t|v1", "can_delete": False})

    repos.before.append(lock_the_tag)
    await Committer(memory, NullEventSink()).commit(Commit(_manifest(2), "v1", None, ()))
    assert repos.transactions == 3  # the first push, then the second's failed attempt and its retry
    tag = await _row(memory, "t|v1")
    assert (tag["digest"], tag["can_delete"]) == ("sha256:" + "02" * 32, False)


async def test_a_write_lock_set_between_the_read_and_the_commit_refuses_the_push(memory: MemoryStorage,
                                                                                  repos: Competing) -> None:
    await Committer(memory, NullEventSink()).commit(Commit(_manifest(1), "v1", None, ()))

    async def write_lock_the_tag() -> None:
        await repos.table.update_entity({"PartitionKey": PARTITION, "RowKey": "t|v1", "can_write": False})

    repos.before.append(write_lock_the_tag)
    with pytest.raises(Locked):
        await Committer(memory, NullEventSink()).commit(Commit(_manifest(2), "v1", None, ()))
    assert (await _row(memory, "t|v1"))["digest"] == "sha256:" + "01" * 32
    keys = [row["RowKey"] async for row in repos.table.list_entities()]
    assert "m|sha256:" + "02" * 32 not in keys


async def test_a_push_overtaken_by_a_later_push_of_its_tag_is_ordered_before_it(memory: MemoryStorage,
                                                                                 repos: Competing) -> None:
    await Committer(memory, NullEventSink()).commit(Commit(_manifest(1), "v1", None, ()))

    async def another_push() -> None:
        await Committer(memory, NullEventSink()).commit(Commit(_manifest(3), "v1", None, ()))

    repos.before.append(another_push)
    await Committer(memory, NullEventSink()).commit(Commit(_manifest(2), "v1", None, ()))
    assert (await _row(memory, "t|v1"))["digest"] == "sha256:" + "03" * 32  # the later push's tag stands
    for n in (1, 2, 3):
        digest = "sha256:" + f"{n:02x}" * 32
        assert (await _row(memory, f"m|{digest}"))["digest"] == digest  # every push is pullable by digest


async def test_a_tag_rewritten_without_end_answers_503_with_retry_after(memory: MemoryStorage, repos: Competing,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    await Committer(memory, NullEventSink()).commit(Commit(_manifest(1), "v1", None, ()))
    monkeypatch.setattr(commit, "COMMIT_SECONDS", 0.2)

    async def touch_the_tag() -> None:  # same digest: not a later push, only a changed ETag
        await repos.table.update_entity({"PartitionKey": PARTITION, "RowKey": "t|v1", "other": "writer"})

    repos.always = touch_the_tag
    with pytest.raises(Unavailable) as raised:
        await Committer(memory, NullEventSink()).commit(Commit(_manifest(2), "v1", None, ()))
    assert raised.value.retry_after is not None and raised.value.retry_after >= 1
    assert repos.transactions >= 4  # it retried before giving up
    assert (await _row(memory, "t|v1"))["digest"] == "sha256:" + "01" * 32
