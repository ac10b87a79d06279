"""What was deleted in one region does not come back through the read fallback from a region the
delete has not reached yet, and the tombstones that see to it go once replication has caught up.

Two regions on one Azurite, their ``replicate`` consumer held back (events are delivered to it by
hand), each image put into both regions through their own apps."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.replication.consumer import ReplicationFailed
from tests.manifest_helpers import error_code
from tests.oci import OCI_INDEX, OCI_MANIFEST, digest_of, push_image
from tests.replication.harness import RegionApp, event, regions_of

ACCEPT = {"Accept": OCI_MANIFEST}


async def in_both(east: RegionApp, west: RegionApp, name: str, tag: str) -> str:
    """Push a random image to east under ``tag``, then the same manifest to west (which imports its
    blobs); its digest."""
    digest, raw = await push_image(east.client, name, tag)
    put = await west.client.put(f"/v2/{name}/manifests/{tag}", content=raw, headers={"Content-Type": OCI_MANIFEST})
    assert put.status_code == 201, put.text
    assert digest == digest_of(raw)
    return digest


async def tombstones(region: RegionApp) -> dict[tuple[str, str], dict[str, Any]]:
    """The region's tombstone rows (partition ``x|...``) by (partition, row key)."""
    return {(r["PartitionKey"], r["RowKey"]): r for r in await region.pending() if r["PartitionKey"].startswith("x|")}


async def status(client: httpx.AsyncClient, name: str, reference: str) -> tuple[int, str]:
    got = await client.get(f"/v2/{name}/manifests/{reference}", headers=ACCEPT)
    return got.status_code, error_code(got) if got.status_code != 200 else ""


async def test_a_manifest_deleted_in_east_is_not_served_from_west_by_digest_or_tag(azurite: Any) -> None:
    async with regions_of(azurite, auto=False) as regions:
        east, west = regions["east"], regions["west"]
        digest = await in_both(east, west, "tomb/app", "v1")
        assert (await east.client.delete(f"/v2/tomb/app/manifests/{digest}")).status_code == 202

        assert await status(east.client, "tomb/app", digest) == (404, "MANIFEST_UNKNOWN")
        assert await status(east.client, "tomb/app", "v1") == (404, "MANIFEST_UNKNOWN")
        head = await east.client.head(f"/v2/tomb/app/manifests/{digest}", headers=ACCEPT)
        assert head.status_code == 404
        # West still has it (the delete has not reached it), and serves it itself.
        rows = await west.rows("tomb/app")
        assert f"m|{digest}" in rows and rows["t|v1"]["digest"] == digest
        assert await status(west.client, "tomb/app", "v1") == (200, "")
        marks = await tombstones(east)
        assert set(marks) == {("x|tomb0app", f"m|{digest}")}
        assert isinstance(marks[("x|tomb0app", f"m|{digest}")]["deleted"], datetime)

        # A delete of what east never had deletes nothing, leaves no tombstone, and west still serves it.
        elsewhere, _ = await push_image(west.client, "tomb/app", "w1")
        assert (await east.client.delete(f"/v2/tomb/app/manifests/{elsewhere}")).status_code == 404
        assert set(await tombstones(east)) == {("x|tomb0app", f"m|{digest}")}
        assert await status(east.client, "tomb/app", elsewhere) == (200, "")


async def test_a_tag_deleted_alone_in_east_is_not_served_from_west_but_its_manifest_still_is(azurite: Any) -> None:
    async with regions_of(azurite, auto=False) as regions:
        east, west = regions["east"], regions["west"]
        digest = await in_both(east, west, "tomb/untag", "v1")
        assert (await east.client.delete("/v2/tomb/untag/manifests/v1")).status_code == 202

        assert await status(east.client, "tomb/untag", "v1") == (404, "MANIFEST_UNKNOWN")
        assert await status(east.client, "tomb/untag", digest) == (200, "")
        assert (await west.rows("tomb/untag"))["t|v1"]["digest"] == digest
        assert set(await tombstones(east)) == {("x|tomb0untag", "t|v1")}


async def test_a_tag_pushed_again_in_west_after_the_delete_in_east_is_served_in_east(azurite: Any) -> None:
    async with regions_of(azurite, auto=False) as regions:
        east, west = regions["east"], regions["west"]
        digest = await in_both(east, west, "tomb/again", "v1")
        old = await in_both(east, west, "tomb/again", "v2")
        assert (await east.client.delete(f"/v2/tomb/again/manifests/{digest}")).status_code == 202
        assert (await east.client.delete(f"/v2/tomb/again/manifests/{old}")).status_code == 202
        assert await status(east.client, "tomb/again", "v1") == (404, "MANIFEST_UNKNOWN")

        # The same manifest tagged again in west, and a new one under v2: both after the delete.
        raw = (await west.client.get(f"/v2/tomb/again/manifests/{digest}", headers=ACCEPT)).content
        again = await west.client.put("/v2/tomb/again/manifests/v1", content=raw,
                                      headers={"Content-Type": OCI_MANIFEST})
        assert again.status_code == 201, again.text
        newer, _ = await push_image(west.client, "tomb/again", "v2")

        for reference, expected in (("v1", digest), (digest, digest), ("v2", newer)):
            got = await east.client.get(f"/v2/tomb/again/manifests/{reference}", headers=ACCEPT)
            assert got.status_code == 200, (reference, got.text)
            assert digest_of(got.content) == expected
        assert await status(east.client, "tomb/again", old) == (404, "MANIFEST_UNKNOWN")
        assert len(await tombstones(east)) == 2  # still there, but older than what west holds now


async def test_a_repository_deleted_in_east_serves_none_of_its_manifests_or_tags_from_west(azurite: Any) -> None:
    async with regions_of(azurite, auto=False) as regions:
        east, west = regions["east"], regions["west"]
        one = await in_both(east, west, "tomb/repo", "v1")
        two = await in_both(east, west, "tomb/repo", "v2")
        deleted = await east.client.delete("/acr/v1/tomb/repo")
        assert deleted.status_code == 202, deleted.text

        for reference in ("v1", "v2", one, two):
            assert await status(east.client, "tomb/repo", reference) == (404, "MANIFEST_UNKNOWN")
        listed = await east.client.get("/v2/tomb/repo/tags/list")
        assert listed.status_code == 404 and error_code(listed) == "NAME_UNKNOWN"
        assert {"t|v1", "t|v2", f"m|{one}", f"m|{two}"} <= set(await west.rows("tomb/repo"))
        assert set(await tombstones(east)) == {("x|tomb0repo", f"m|{one}"), ("x|tomb0repo", f"m|{two}")}


async def test_tombstones_go_once_the_consumer_has_replicated_the_delete_and_the_untag(azurite: Any) -> None:
    async with regions_of(azurite, auto=False) as regions:
        east, west = regions["east"], regions["west"]
        digest = await in_both(east, west, "tomb/done", "v1")
        other = await in_both(east, west, "tomb/done", "v2")
        assert (await east.client.delete(f"/v2/tomb/done/manifests/{digest}")).status_code == 202
        assert (await east.client.delete("/v2/tomb/done/manifests/v2")).status_code == 202
        assert len(await tombstones(east)) == 2

        await east.deliver(event("delete", "tomb/done", digest))
        assert set(await tombstones(east)) == {("x|tomb0done", "t|v2")}
        await east.deliver(event("untag", "tomb/done", other, tag="v2"))
        assert await east.pending() == []  # no tombstone, no pending row
        rows = await west.rows("tomb/done")
        assert f"m|{digest}" not in rows and "t|v1" not in rows and "t|v2" not in rows and f"m|{other}" in rows
        assert await status(east.client, "tomb/done", "v1") == (404, "MANIFEST_UNKNOWN")


async def test_a_tombstone_goes_when_the_retry_timer_replicates_its_delete(
        azurite: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async with regions_of(azurite, auto=False) as regions:
        east, west = regions["east"], regions["west"]
        digest = await in_both(east, west, "tomb/retry", "v1")
        assert (await east.client.delete(f"/v2/tomb/retry/manifests/{digest}")).status_code == 202
        known = await east.regions()
        real = known.storage

        async def unreachable(name: str) -> Any:
            raise ConnectionError(f"{name} is unreachable")

        monkeypatch.setattr(known, "storage", unreachable)
        with pytest.raises(ReplicationFailed):
            await east.deliver(event("delete", "tomb/retry", digest))
        assert len(await tombstones(east)) == 1 and len(await east.pending()) == 2  # tombstone + pending row

        monkeypatch.setattr(known, "storage", real)
        replicator = await east.replicator()
        assert await replicator.retry_pending(timedelta(0)) == 1
        assert await east.pending() == []
        assert f"m|{digest}" not in await west.rows("tomb/retry")


async def test_a_tombstone_older_than_a_week_is_ignored_and_deleted(azurite: Any) -> None:
    async with regions_of(azurite, auto=False) as regions:
        east, west = regions["east"], regions["west"]
        digest = await in_both(east, west, "tomb/old", "v1")
        assert (await east.client.delete(f"/v2/tomb/old/manifests/{digest}")).status_code == 202
        async with east.probe.clients.table_service.get_table_client(f"{east.probe.prefix}replication") as table:
            await table.upsert_entity({"PartitionKey": "x|tomb0old", "RowKey": f"m|{digest}",
                                       "deleted": datetime.now(UTC) - timedelta(days=8)})

        assert await status(east.client, "tomb/old", digest) == (200, "")
        assert await tombstones(east) == {}


async def test_an_index_pushed_in_east_does_not_import_a_child_deleted_there_from_west(azurite: Any) -> None:
    async with regions_of(azurite, auto=False) as regions:
        east, west = regions["east"], regions["west"]
        child = await in_both(east, west, "tomb/index", "child")
        size = len((await east.client.get(f"/v2/tomb/index/manifests/{child}", headers=ACCEPT)).content)
        assert (await east.client.delete(f"/v2/tomb/index/manifests/{child}")).status_code == 202
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                            "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": size}]}).encode()

        pushed = await east.client.put("/v2/tomb/index/manifests/all", content=index,
                                       headers={"Content-Type": OCI_INDEX})
        assert pushed.status_code == 400 and error_code(pushed) == "MANIFEST_BLOB_UNKNOWN", pushed.text
        rows = await east.rows("tomb/index")
        assert f"m|{child}" not in rows and "t|all" not in rows
