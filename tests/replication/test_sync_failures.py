"""Replication that fails part-way (a storage error after some blob copies) leaves a pending row,
and completes when the event comes again or the retry timer runs, duplicating nothing."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.replication.consumer import ReplicationFailed
from shared.storage.interfaces import Storage
from tests.oci import OCI_MANIFEST, push_image
from tests.replication.harness import RegionApp, event, regions_of


class CopyFailure(Exception):
    """The storage of the target region fails (a crash, for the replicator)."""


class FailingAfter:
    """A region's storage whose blob commits fail after the first ``copies`` (counted in ``commits``)."""

    def __init__(self, storage: Storage, copies: int) -> None:
        self._storage = storage
        self.copies = copies
        self.commits = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)

    @property
    def container(self) -> Any:
        outer = self
        real = self._storage.container

        class Container:
            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

            def get_blob_client(self, blob: str) -> Any:
                client = real.get_blob_client(blob)

                class Blob:
                    def __getattr__(self, name: str) -> Any:
                        return getattr(client, name)

                    async def commit_block_list(self, *args: Any, **kwargs: Any) -> Any:
                        if outer.commits >= outer.copies:
                            raise CopyFailure(f"storage failed after {outer.copies} copies")
                        outer.commits += 1
                        return await client.commit_block_list(*args, **kwargs)

                return Blob()

        return Container()


async def _fail_west_after(east: RegionApp, copies: int, monkeypatch: pytest.MonkeyPatch) -> FailingAfter:
    regions = await east.regions()
    failing = FailingAfter(await regions.storage("west"), copies)

    async def storage(name: str) -> Any:
        return failing if name == "west" else await regions.__class__.storage(regions, name)

    monkeypatch.setattr(regions, "storage", storage)
    return failing


async def _state(west: RegionApp, repository: str) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
    data = sorted(name for name in await west.probe.blobs() if name.startswith("data/"))
    return await west.rows(repository), data, await west.probe.rows("blobs")


@pytest.mark.parametrize("copies", [0, 2, 4])
async def test_a_replication_that_fails_after_k_blob_copies_completes_on_redelivery_without_duplicates(
        azurite: Any, monkeypatch: pytest.MonkeyPatch, copies: int) -> None:
    async with regions_of(azurite, auto=False) as regions:
        east, west = regions["east"], regions["west"]
        digest, raw = await push_image(east.client, "crash/app", "v1", layers=5)
        pushed = event("push", "crash/app", digest, "v1")
        failing = await _fail_west_after(east, copies, monkeypatch)
        with pytest.raises(ReplicationFailed):
            await east.deliver(pushed)
        assert failing.commits == copies
        [pending] = await east.pending()
        assert (pending["PartitionKey"], pending["RowKey"]) == ("q|west", pushed.id)
        assert json.loads(pending["event"])["target"]["digest"] == digest
        assert pending["attempts"].value == 1 and "CopyFailure" in pending["last_error"]
        assert "t|v1" not in await west.rows("crash/app")  # nothing names what is not all there

        monkeypatch.undo()
        await east.deliver(pushed)
        assert await east.pending() == []
        rows, data, index = await _state(west, "crash/app")
        assert rows["t|v1"]["digest"] == digest
        doc = json.loads(raw)
        digests = {doc["config"]["digest"], *(layer["digest"] for layer in doc["layers"])}
        assert data == sorted(f"data/{d.replace(':', '-')}" for d in digests)  # one copy of each, no leftovers
        assert sorted(row["PartitionKey"] for row in index) == sorted(digests)
        assert (await west.linked_blob_hashes("crash/app")) == {d: d for d in digests}
        assert len([row for row in await west.outbox("crash/app")]) <= 1
        await east.deliver(pushed)
        assert await _state(west, "crash/app") == (rows, data, index)


async def test_the_retry_timer_completes_a_replication_a_failure_left_pending(
        azurite: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async with regions_of(azurite, ("east", "west", "north"), auto=False) as regions:
        east, west, north = regions["east"], regions["west"], regions["north"]
        digest, _ = await push_image(east.client, "timer/app", "v1", layers=3)
        pushed = event("push", "timer/app", digest, "v1")
        await _fail_west_after(east, 1, monkeypatch)
        with pytest.raises(ReplicationFailed):
            await east.deliver(pushed)
        assert await north.tag_digest("timer/app", "v1") == digest  # one region failing holds up no other
        assert [row["PartitionKey"] for row in await east.pending()] == ["q|west"]
        monkeypatch.undo()

        replicator = await east.replicator()
        assert await replicator.retry_pending(timedelta(seconds=120)) == 0  # too young: Event Grid retries it
        assert len(await east.pending()) == 1
        later = datetime.now(UTC) + timedelta(seconds=121)
        assert await replicator.retry_pending(timedelta(seconds=120), now=later) == 1
        assert await east.pending() == []
        assert await west.tag_digest("timer/app", "v1") == digest
        assert (await west.rows("timer/app")) == (await east.rows("timer/app"))


async def test_an_event_that_arrived_by_replication_is_acknowledged_and_ignored(azurite: Any) -> None:
    async with regions_of(azurite, auto=False) as regions:
        east, west = regions["east"], regions["west"]
        digest, _ = await push_image(east.client, "echo/app", "v1")
        await east.deliver(replace(event("push", "echo/app", digest, "v1"), origin="west"))
        assert await west.rows("echo/app") == {}
        assert await east.pending() == []


async def test_an_untag_in_east_removes_the_tag_in_west_unless_west_moved_it_later(azurite: Any) -> None:
    async with regions_of(azurite, auto=False) as regions:
        east, west = regions["east"], regions["west"]
        digest, raw = await push_image(east.client, "untag/app", "v1")
        other, _ = await push_image(east.client, "untag/app", "v2")
        await east.deliver(event("push", "untag/app", digest, "v1"))
        await east.deliver(event("push", "untag/app", other, "v2"))
        assert await west.tag_digest("untag/app", "v1") == digest
        assert (await east.client.delete("/v2/untag/app/manifests/v1")).status_code == 202
        await east.deliver(event("untag", "untag/app", digest, "v1"))
        assert await west.tag_digest("untag/app", "v1") is None
        assert f"m|{digest}" in await west.rows("untag/app")

        stale = event("untag", "untag/app", digest, "v2")
        assert (await east.client.delete("/v2/untag/app/manifests/v2")).status_code == 202
        moved = await west.client.put("/v2/untag/app/manifests/v2", content=raw, headers={"Content-Type": OCI_MANIFEST})
        assert moved.status_code == 201
        await east.deliver(stale)  # west moved v2 after the untag: west's newer write stands
        assert await west.tag_digest("untag/app", "v2") == digest
