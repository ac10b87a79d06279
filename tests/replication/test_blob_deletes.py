"""A blob DELETE reaches every region at once (blob deletes cause no event), and the read fallback
never serves back a blob deleted here; a link made elsewhere after the delete is kept and served."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from scripts.azurite import Azurite
from tests.oci import push_image
from tests.replication.harness import regions_of


def _layers(raw: bytes) -> list[str]:
    return [layer["digest"] for layer in json.loads(raw)["layers"]]


async def _tombstones(region: object) -> list[dict[str, object]]:
    return [r for r in await region.pending() if str(r["PartitionKey"]).startswith("x|")]  # type: ignore[attr-defined]


async def test_a_blob_deleted_in_one_region_is_gone_from_every_region_and_not_served_back(azurite: Azurite) -> None:
    async with regions_of(azurite) as regions:
        east, west = regions["east"], regions["west"]
        _, raw = await push_image(east.client, "team/blobs", "v1", layers=2)
        await east.settle()
        layer, kept = _layers(raw)
        assert f"l|{layer}" in await west.rows("team/blobs")

        assert (await east.client.delete(f"/v2/team/blobs/blobs/{layer}")).status_code == 202
        for region in (east, west):
            rows = await region.rows("team/blobs")
            assert f"l|{layer}" not in rows and f"l|{kept}" in rows
            assert (await region.client.head(f"/v2/team/blobs/blobs/{layer}")).status_code == 404
            assert (await region.client.get(f"/v2/team/blobs/blobs/{layer}")).status_code == 404
        assert await _tombstones(east) == []  # every region has it gone: nothing left to hide


async def test_a_blob_linked_only_in_another_region_is_deleted_there(azurite: Azurite) -> None:
    async with regions_of(azurite, auto=False) as regions:  # replication held back
        east, west = regions["east"], regions["west"]
        _, raw = await push_image(west.client, "team/there", "v1", layers=1)
        [layer] = _layers(raw)
        assert (await east.client.head(f"/v2/team/there/blobs/{layer}")).status_code == 200  # served from west
        assert (await east.client.delete(f"/v2/team/there/blobs/{layer}")).status_code == 202
        assert f"l|{layer}" not in await west.rows("team/there")
        assert (await west.client.head(f"/v2/team/there/blobs/{layer}")).status_code == 404
        missing = "sha256:" + "0" * 64
        refused = await east.client.delete(f"/v2/team/there/blobs/{missing}")
        assert refused.status_code == 404 and refused.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
        assert await _tombstones(east) == []


async def test_a_link_made_elsewhere_after_the_delete_is_kept_and_served(azurite: Azurite) -> None:
    async with regions_of(azurite) as regions:
        east, west = regions["east"], regions["west"]
        _, raw = await push_image(east.client, "team/later", "v1", layers=1)
        await east.settle()
        [layer] = _layers(raw)
        # West links the blob again "after" the delete that follows (its clock ahead by an hour).
        partition = "team0later"
        table = west.probe.clients.tables["repos"]
        row = await table.get_entity(partition, f"l|{layer}")
        await table.update_entity({"PartitionKey": partition, "RowKey": f"l|{layer}",
                                   "linked": datetime.now(UTC) + timedelta(hours=1)}, mode="merge")
        assert (await east.client.delete(f"/v2/team/later/blobs/{layer}")).status_code == 202
        assert f"l|{layer}" not in await east.rows("team/later")
        assert (await west.rows("team/later"))[f"l|{layer}"]["size"] == row["size"]  # kept there
        served = await east.client.get(f"/v2/team/later/blobs/{layer}")
        assert served.status_code == 307  # the newer link elsewhere is served
