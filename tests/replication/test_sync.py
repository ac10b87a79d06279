"""The replication consumer over real Azurite: a change made in one region reaches the others,
whole (manifest bytes, tags, referrers, blob bytes), however its events are repeated or ordered."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import httpx

from tests.manifest_helpers import small_image
from tests.oci import OCI_INDEX, OCI_MANIFEST, digest_of, push_artifact, push_image
from tests.replication.harness import RegionApp, event, regions_of

API = {"api-version": "2021-07-01"}


def blob_digests(raw: bytes) -> set[str]:
    """The config and layer digests an image manifest names, read here from its JSON."""
    doc = json.loads(raw)
    return {doc["config"]["digest"], *(layer["digest"] for layer in doc["layers"])}


async def assert_same_repository(regions: dict[str, RegionApp], repository: str) -> None:
    """Every region holds the same rows of ``repository`` (links without their locations) and each
    linked blob's bytes hash to its digest there."""
    first, *others = regions.values()
    expected = await first.rows(repository)
    assert expected, "nothing stored"
    for region in others:
        assert await region.rows(repository) == expected, region.name
    for region in regions.values():
        hashes = await region.linked_blob_hashes(repository)
        assert hashes == {digest: digest for digest in hashes}, region.name


async def test_a_push_in_east_reaches_west_with_identical_bytes_tags_referrers_and_blobs(azurite: Any) -> None:
    async with regions_of(azurite) as regions:
        east, west = regions["east"], regions["west"]
        digest, raw = await push_image(east.client, "app/web", "v1", layers=3)
        subject = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(raw)}
        signature = await push_artifact(east.client, "app/web", subject, "application/vnd.example.signature")
        await east.settle()

        pulled = await west.client.get("/v2/app/web/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert pulled.status_code == 200
        assert pulled.content == raw and "sha256:" + hashlib.sha256(pulled.content).hexdigest() == digest
        referrers = (await west.client.get(f"/v2/app/web/referrers/{digest}")).json()["manifests"]
        assert [r["digest"] for r in referrers] == [signature]
        west_hashes = await west.linked_blob_hashes("app/web")
        assert blob_digests(raw) <= set(west_hashes)
        assert all(west_hashes[d] == d for d in blob_digests(raw))
        redirect = await west.client.get(f"/v2/app/web/blobs/{json.loads(raw)['layers'][0]['digest']}")
        assert redirect.status_code == 307 and west.settings.storage.prefix in redirect.headers["location"]
        await assert_same_repository(regions, "app/web")
        assert await east.pending() == []
        announced = [json.loads(row["event"]) for row in await west.outbox("app/web")]
        assert sorted((e["action"], e["target"]["digest"]) for e in announced) == sorted(
            [("push", digest), ("push", signature)]) or announced == []  # published already, or waiting


async def test_a_push_in_west_reaches_east(azurite: Any) -> None:
    async with regions_of(azurite) as regions:
        digest, _ = await push_image(regions["west"].client, "from/west", "latest")
        await regions["west"].settle()
        pulled = await regions["east"].client.get("/v2/from/west/manifests/latest", headers={"Accept": OCI_MANIFEST})
        assert pulled.status_code == 200 and digest_of(pulled.content) == digest
        await assert_same_repository(regions, "from/west")


async def test_a_push_reaches_every_one_of_three_regions(azurite: Any) -> None:
    async with regions_of(azurite, ("east", "west", "north")) as regions:
        await push_image(regions["north"].client, "three/app", "v1")
        await regions["north"].settle()
        await assert_same_repository(regions, "three/app")
        assert await regions["north"].pending() == []


async def _index(client: httpx.AsyncClient, repository: str, tag: str) -> tuple[str, list[str]]:
    children = []
    for _ in range(2):
        digest, raw = await push_image(client, repository)
        children.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": len(raw)})
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}).encode()
    response = await client.put(f"/v2/{repository}/manifests/{tag}", content=body, headers={"Content-Type": OCI_INDEX})
    assert response.status_code == 201, response.text
    return digest_of(body), [str(c["digest"]) for c in children]


async def test_an_index_event_alone_brings_its_children_and_a_large_manifest_its_bytes(azurite: Any) -> None:
    async with regions_of(azurite, auto=False) as regions:
        east, west = regions["east"], regions["west"]
        index, children = await _index(east.client, "multi/app", "latest")
        doc, _, _ = await small_image(east.client, "big/app")
        doc["annotations"] = {"padding": "x" * 70_000}  # too large to keep inline in a row
        raw = json.dumps(doc).encode()
        assert (await east.client.put("/v2/big/app/manifests/v1", content=raw,
                                      headers={"Content-Type": OCI_MANIFEST})).status_code == 201
        await west.deliver(event("push", "multi/app", index, "latest"))  # wrong region: ignored there
        assert await west.rows("multi/app") == {}
        await east.deliver(event("push", "multi/app", index, "latest"))
        await east.deliver(event("push", "big/app", digest_of(raw), "v1"))

        rows = await west.rows("multi/app")
        assert {f"m|{d}" for d in [index, *children]} <= set(rows) and rows["t|latest"]["digest"] == index
        await assert_same_repository(regions, "multi/app")
        pulled = await west.client.get("/v2/big/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert pulled.content == raw and digest_of(pulled.content) == digest_of(raw)
        assert (await west.rows("big/app"))[f"m|{digest_of(raw)}"]["content"] in (b"", None)
        await assert_same_repository(regions, "big/app")


async def test_a_delete_in_east_removes_the_manifest_its_tags_and_referrer_in_west(azurite: Any) -> None:
    async with regions_of(azurite) as regions:
        east, west = regions["east"], regions["west"]
        digest, raw = await push_image(east.client, "gone/app", "v1")
        await push_image(east.client, "gone/app", "v2")
        subject = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(raw)}
        signature = await push_artifact(east.client, "gone/app", subject, "application/vnd.example.signature")
        await east.settle()
        assert f"r|{digest}|{signature}" in await west.rows("gone/app")

        assert (await east.client.delete(f"/v2/gone/app/manifests/{signature}")).status_code == 202
        assert (await east.client.delete(f"/v2/gone/app/manifests/{digest}")).status_code == 202
        await east.settle()
        rows = await west.rows("gone/app")
        assert f"m|{digest}" not in rows and "t|v1" not in rows and f"r|{digest}|{signature}" not in rows
        assert "t|v2" in rows
        await assert_same_repository(regions, "gone/app")


async def test_a_late_delete_leaves_a_manifest_pushed_again_in_the_target_after_it(azurite: Any) -> None:
    async with regions_of(azurite, auto=False) as regions:
        east, west = regions["east"], regions["west"]
        doc, _, _ = await small_image(east.client, "again/app")
        raw = json.dumps(doc).encode()
        assert (await east.client.put("/v2/again/app/manifests/v1", content=raw,
                                      headers={"Content-Type": OCI_MANIFEST})).status_code == 201
        await east.deliver(event("push", "again/app", digest_of(raw), "v1"))
        assert (await east.client.delete(f"/v2/again/app/manifests/{digest_of(raw)}")).status_code == 202
        late = event("delete", "again/app", digest_of(raw))
        await asyncio.sleep(0.01)
        assert (await west.client.put("/v2/again/app/manifests/v2", content=raw,
                                      headers={"Content-Type": OCI_MANIFEST})).status_code == 201
        await east.deliver(late)
        rows = await west.rows("again/app")
        assert f"m|{digest_of(raw)}" in rows and rows["t|v2"]["digest"] == digest_of(raw)


async def test_the_same_event_delivered_twice_leaves_the_same_rows_and_blobs(azurite: Any) -> None:
    async with regions_of(azurite, auto=False) as regions:
        east, west = regions["east"], regions["west"]
        digest, raw = await push_image(east.client, "twice/app", "v1", layers=3)
        subject = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(raw)}
        signature = await push_artifact(east.client, "twice/app", subject, "application/vnd.example.sbom")
        pushes = [event("push", "twice/app", digest, "v1"), event("push", "twice/app", signature)]
        for pushed in pushes:
            await east.deliver(pushed)
        first = await west.probe.snapshot()
        for pushed in pushes:
            await east.deliver(pushed)
        again = await west.probe.snapshot()
        assert _without_link_times(again) == _without_link_times(first)
        data_blobs = [name for name in again["blobs"] if name.startswith("data/")]
        assert len(data_blobs) == len(blob_digests(raw)) + 2  # the artifact's config and layer
        outbox = [key for key in again["tables"]["repos"] if key[1].startswith("o|")]
        assert len(outbox) == 2  # one arrival event per change, however often it was delivered
        await assert_same_repository(regions, "twice/app")


def _without_link_times(snapshot: dict[str, Any]) -> dict[str, Any]:
    tables = {name: {key: {k: v for k, v in row.items() if k != "linked"} for key, row in rows.items()}
              for name, rows in snapshot["tables"].items()}
    return {**snapshot, "tables": tables}


async def _push_tag(region: RegionApp, repository: str, tag: str) -> str:
    doc, _, _ = await small_image(region.client, repository)
    raw = json.dumps(doc).encode()
    response = await region.client.put(f"/v2/{repository}/manifests/{tag}", content=raw,
                                       headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return digest_of(raw)


async def test_two_pushes_of_a_tag_delivered_in_reverse_order_leave_the_later_one_everywhere(azurite: Any) -> None:
    async with regions_of(azurite, ("east", "west", "north"), auto=False) as regions:
        east = regions["east"]
        a = await _push_tag(east, "order/app", "v1")
        first = event("push", "order/app", a, "v1")
        b = await _push_tag(east, "order/app", "v1")
        second = event("push", "order/app", b, "v1")
        await east.deliver(second)
        await east.deliver(first)
        for region in regions.values():
            assert await region.tag_digest("order/app", "v1") == b, region.name
            assert f"m|{a}" in await region.rows("order/app")
        await assert_same_repository(regions, "order/app")


async def test_conflicting_tag_pushes_in_two_regions_converge_on_the_later_one(azurite: Any) -> None:
    for order in ("east first", "west first", "at once"):
        async with regions_of(azurite, auto=False) as regions:
            east, west = regions["east"], regions["west"]
            a = await _push_tag(east, "race/app", "v1")
            b = await _push_tag(west, "race/app", "v1")  # pushed after a: its (updated, digest) is greater
            from_east, from_west = event("push", "race/app", a, "v1"), event("push", "race/app", b, "v1")
            if order == "east first":
                await east.deliver(from_east)
                await west.deliver(from_west)
            elif order == "west first":
                await west.deliver(from_west)
                await east.deliver(from_east)
            else:
                await asyncio.gather(east.deliver(from_east), west.deliver(from_west))
            assert await east.tag_digest("race/app", "v1") == b, order
            assert await west.tag_digest("race/app", "v1") == b, order
            await assert_same_repository(regions, "race/app")


async def test_a_tag_lock_set_in_east_is_enforced_in_west_and_lifted_there_too(azurite: Any) -> None:
    async with regions_of(azurite) as regions:
        east, west = regions["east"], regions["west"]
        digest, _ = await push_image(east.client, "locked/app", "v1")
        await east.settle()
        patched = await east.client.patch("/acr/v1/locked/app/_tags/v1", params=API, json={"writeEnabled": False})
        assert patched.status_code == 200, patched.text
        await east.settle()  # the PATCH's attributes event, replicated

        row = (await west.rows("locked/app"))["t|v1"]
        assert row["can_write"] is False and row["digest"] == digest
        doc, _, _ = await small_image(west.client, "locked/app")
        body = json.dumps(doc).encode()
        refused = await west.client.put("/v2/locked/app/manifests/v1", content=body,
                                        headers={"Content-Type": OCI_MANIFEST})
        in_east = await east.client.put("/v2/locked/app/manifests/v1", content=body,
                                        headers={"Content-Type": OCI_MANIFEST})
        assert refused.status_code == in_east.status_code == 403
        assert refused.json() == in_east.json()
        assert await west.tag_digest("locked/app", "v1") == digest

        repository = await east.client.patch("/acr/v1/locked/app", params=API, json={"deleteEnabled": False})
        assert repository.status_code == 200, repository.text
        lifted = await east.client.patch("/acr/v1/locked/app/_tags/v1", params=API, json={"writeEnabled": True})
        assert lifted.status_code == 200, lifted.text
        await east.settle()
        assert (await west.rows("locked/app"))["catalog"]["can_delete"] is False
        assert (await west.client.delete(f"/v2/locked/app/manifests/{digest}")).status_code == 403
        moved = await west.client.put("/v2/locked/app/manifests/v1", content=body,
                                      headers={"Content-Type": OCI_MANIFEST})
        assert moved.status_code == 201, moved.text


async def test_a_tag_deleted_alone_in_east_is_deleted_in_west(azurite: Any) -> None:
    async with regions_of(azurite) as regions:
        east, west = regions["east"], regions["west"]
        digest, _ = await push_image(east.client, "untagged/app", "v1")
        await push_image(east.client, "untagged/app", "v2")
        await east.settle()
        assert (await east.client.delete("/v2/untagged/app/manifests/v1")).status_code == 202
        await east.settle()
        rows = await west.rows("untagged/app")
        assert "t|v1" not in rows and f"m|{digest}" in rows and "t|v2" in rows
        await assert_same_repository(regions, "untagged/app")
