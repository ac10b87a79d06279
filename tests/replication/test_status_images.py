"""Which regions hold an image: GET /acr/admin/replications/images/<repository>/<reference> checks
each region's manifest row, links and blob index directly."""

from __future__ import annotations

import json

from scripts.azurite import Azurite
from tests.oci import OCI_INDEX, digest_of, push_image
from tests.replication.status_world import app_client, single_region, world_of

IMAGES = "/acr/admin/replications/images"


async def test_an_image_pushed_to_one_region_is_shown_present_there_only(azurite: Azurite) -> None:
    async with world_of(azurite) as world:
        # Pushed through an app of east's storage without replication: it reaches no other region.
        async with app_client(single_region(azurite, world, "east")) as (_, east_only):
            digest, raw = await push_image(east_only, "team/app", "v1")
        assert digest == digest_of(raw)

        by_tag = await world.clients["west"].get(f"{IMAGES}/team/app/v1")
        assert by_tag.status_code == 200, by_tag.text
        assert by_tag.json() == {
            "repository": "team/app", "reference": "v1", "digest": digest,
            "regions": {"east": {"present": True, "tag": digest, "missing": []},
                        "west": {"present": False, "tag": None, "missing": [digest]}},
        }
        by_digest = await world.clients["east"].get(f"{IMAGES}/team/app/{digest}")
        assert by_digest.json() == {
            "repository": "team/app", "reference": digest, "digest": digest,
            "regions": {"east": {"present": True, "missing": []}, "west": {"present": False, "missing": [digest]}},
        }


async def test_a_region_lacking_one_layer_does_not_hold_the_image(azurite: Azurite) -> None:
    async with world_of(azurite) as world:
        async with app_client(single_region(azurite, world, "east")) as (_, east_only):
            digest, raw = await push_image(east_only, "team/app", "v1")
        async with app_client(single_region(azurite, world, "west")) as (_, west_only):
            response = await west_only.put(f"/v2/team/app/manifests/{digest}", content=raw,
                                           headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
            assert response.status_code == 400  # west has none of the blobs: a manifest alone cannot be put
            digest_west, raw_west = await push_image(west_only, "team/app", "v1")
        layer = json.loads(raw_west)["layers"][1]["digest"]
        async with world.table("west", "blobs") as blobs:
            await blobs.delete_entity(layer, "")

        shown = (await world.clients["east"].get(f"{IMAGES}/team/app/{digest_west}")).json()
        assert shown["regions"]["west"] == {"present": False, "missing": [layer]}
        assert shown["regions"]["east"] == {"present": False, "missing": [digest_west]}
        # By tag, each region names its own digest; the digest shown is this region's (east's).
        tagged = (await world.clients["east"].get(f"{IMAGES}/team/app/v1")).json()
        assert tagged["digest"] == digest
        assert tagged["regions"]["east"] == {"present": True, "tag": digest, "missing": []}
        assert tagged["regions"]["west"] == {"present": False, "tag": digest_west, "missing": [digest]}


async def test_an_index_is_held_only_with_every_child_manifest(azurite: Azurite) -> None:
    async with world_of(azurite) as world:
        async with app_client(single_region(azurite, world, "east")) as (_, east_only):
            child_a, raw_a = await push_image(east_only, "team/multi")
            child_b, raw_b = await push_image(east_only, "team/multi")
            index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": len(r)}
                for d, r in ((child_a, raw_a), (child_b, raw_b))]}).encode()
            put = await east_only.put("/v2/team/multi/manifests/all", content=index,
                                      headers={"Content-Type": OCI_INDEX})
            assert put.status_code == 201, put.text
        shown = (await world.clients["west"].get(f"{IMAGES}/team/multi/all")).json()
        assert shown["digest"] == digest_of(index)
        assert shown["regions"]["east"]["present"] is True

        config_b = json.loads(raw_b)["config"]["digest"]
        async with world.table("east", "blobs") as blobs:
            await blobs.delete_entity(config_b, "")
        shown = (await world.clients["west"].get(f"{IMAGES}/team/multi/all")).json()
        assert shown["regions"]["east"] == {"present": False, "tag": digest_of(index), "missing": [config_b]}


async def test_unknown_images_and_malformed_references(azurite: Azurite) -> None:
    async with world_of(azurite) as world:
        client = world.clients["east"]
        missing = await client.get(f"{IMAGES}/team/app/v1")
        assert missing.status_code == 404
        assert missing.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        absent = await client.get(f"{IMAGES}/team/app/sha256:{'0' * 64}")
        assert absent.status_code == 200
        assert {r["present"] for r in absent.json()["regions"].values()} == {False}
        for path, status, code in ((f"{IMAGES}/team/app/sha256:xyz", 400, "DIGEST_INVALID"),
                                   (f"{IMAGES}/team/app/-bad", 400, "TAG_INVALID"),
                                   (f"{IMAGES}/Team/app/v1", 400, "NAME_INVALID"),
                                   (f"{IMAGES}/team//app/v1", 400, "NAME_INVALID"),
                                   (f"{IMAGES}/v1", 404, "NOT_FOUND")):
            response = await client.get(path)
            assert response.status_code == status, (path, response.text)
            assert response.json()["errors"][0]["code"] == code, (path, response.text)
