"""A manifest delete racing a push: no tag is left naming a deleted manifest, and a tag moved to
another manifest meanwhile is not deleted with this one."""

from __future__ import annotations

import json

import httpx
from starlette.applications import Starlette

from tests.manifest_helpers import TableSpy, encode, registry_of_app
from tests.oci import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, descriptor, digest_of, push_blob
from tests.storage import StorageProbe


async def _two(client: httpx.AsyncClient, repository: str) -> tuple[bytes, bytes]:
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"layer"
    await push_blob(client, repository, config)
    await push_blob(client, repository, layer)
    return tuple(json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
                             "layers": [descriptor(OCI_LAYER, layer)], "annotations": {"n": str(i)}}).encode()
                 for i in range(2))  # type: ignore[return-value]


async def _put(client: httpx.AsyncClient, repository: str, reference: str, raw: bytes) -> int:
    response = await client.put(f"/v2/{repository}/manifests/{reference}", content=raw,
                                headers={"Content-Type": OCI_MANIFEST})
    return response.status_code


async def _tags_and_manifests(storage: StorageProbe, repository: str) -> tuple[dict[str, str], set[str]]:
    rows = [r for r in await storage.rows("repos") if r["PartitionKey"] == encode(repository)]
    tags = {r["RowKey"][2:]: str(r["digest"]) for r in rows if r["RowKey"].startswith("t|")}
    return tags, {r["RowKey"][2:] for r in rows if r["RowKey"].startswith("m|")}


async def test_tag_pushed_during_a_manifest_delete_never_names_a_deleted_manifest(
        app: Starlette, client: httpx.AsyncClient, instances: list[httpx.AsyncClient], storage: StorageProbe) -> None:
    doomed, _ = await _two(client, "del/race")
    assert await _put(client, "del/race", "a", doomed) == 201
    registry = await registry_of_app(app)
    spy = TableSpy(registry.storage.repos)
    registry.storage.repos = spy

    async def tag_it_again() -> None:  # another host tags the manifest after the delete listed its tags
        assert await _put(instances[0], "del/race", "b", doomed) == 201

    spy.before_commit = tag_it_again
    assert (await client.delete(f"/v2/del/race/manifests/{digest_of(doomed)}")).status_code == 202
    assert spy.before_commit is None
    tags, manifests = await _tags_and_manifests(storage, "del/race")
    assert all(digest in manifests for digest in tags.values()), (tags, manifests)
    assert (await client.get("/v2/del/race/manifests/b")).status_code == 404
    assert digest_of(doomed) not in manifests


async def test_tag_moved_to_another_manifest_during_a_delete_is_kept(
        app: Starlette, client: httpx.AsyncClient, instances: list[httpx.AsyncClient], storage: StorageProbe) -> None:
    doomed, kept = await _two(client, "del/moved")
    assert await _put(client, "del/moved", "a", doomed) == 201
    registry = await registry_of_app(app)
    spy = TableSpy(registry.storage.repos)
    registry.storage.repos = spy

    async def move_the_tag() -> None:  # another host moves tag a to another manifest meanwhile
        assert await _put(instances[0], "del/moved", "a", kept) == 201

    spy.before_commit = move_the_tag
    assert (await client.delete(f"/v2/del/moved/manifests/{digest_of(doomed)}")).status_code == 202
    assert spy.before_commit is None
    tags, manifests = await _tags_and_manifests(storage, "del/moved")
    assert tags == {"a": digest_of(kept)}
    assert manifests == {digest_of(kept)}
    assert (await client.get("/v2/del/moved/manifests/a")).content == kept
