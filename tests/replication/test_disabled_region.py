"""A region whose endpoint is switched off keeps receiving replication, so once it is switched on
again it serves, from its own storage, what was pushed elsewhere meanwhile."""

from __future__ import annotations

from scripts.azurite import Azurite
from tests.oci import push_image
from tests.replication.harness import regions_of

DISABLED = {"properties": {"regionEndpointEnabled": False}}
ENABLED = {"properties": {"regionEndpointEnabled": True}}


async def test_a_disabled_region_is_caught_up_while_off_and_serves_once_enabled(azurite: Azurite) -> None:
    async with regions_of(azurite) as regions:
        east, west = regions["east"], regions["west"]
        assert (await east.client.patch("/acr/admin/replications/west", json=DISABLED)).status_code == 200
        digest, raw = await push_image(east.client, "team/late", "v1", layers=2)
        await east.settle()
        assert not [r for r in await east.pending() if r["PartitionKey"].startswith("q|")]  # none left to do
        rows = await west.rows("team/late")
        assert f"m|{digest}" in rows and rows["t|v1"]["digest"] == digest
        assert await west.linked_blob_hashes("team/late") == await east.linked_blob_hashes("team/late")
        refused = await west.client.get("/v2/team/late/manifests/v1")
        assert refused.status_code == 503

        assert (await east.client.patch("/acr/admin/replications/west", json=ENABLED)).status_code == 200
        await (await west.regions()).switches.read()  # what the cache's expiry does within seconds
        served = await west.client.get("/v2/team/late/manifests/v1",
                                       headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        assert served.status_code == 200 and served.content == raw
