"""The /acr/v1 metadata API and locks on every path, through the app."""

from __future__ import annotations

import json

import httpx

from tests.auth_helpers import OCI_INDEX, OCI_MANIFEST, push_image
from tests.storage import StorageProbe


async def _index(client: httpx.AsyncClient, repository: str, tag: str, children: dict[str, str]) -> str:
    manifests = []
    for arch, digest in children.items():
        size = len((await client.get(f"/v2/{repository}/manifests/{digest}")).content)
        manifests.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
                          "platform": {"architecture": arch, "os": "linux"}})
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()
    response = await client.put(f"/v2/{repository}/manifests/{tag}", content=body,
                                headers={"Content-Type": OCI_INDEX})
    assert response.status_code == 201, response.text
    return str(response.headers["Docker-Content-Digest"])


async def test_multi_arch_manifests_report_architecture_os_and_references(client: httpx.AsyncClient) -> None:
    amd = await push_image(client, "multi/app", "amd64", arch="amd64")
    arm = await push_image(client, "multi/app", "arm64", arch="arm64")
    index = await _index(client, "multi/app", "latest", {"amd64": amd, "arm64": arm})
    body = (await client.get("/acr/v1/multi/app/_manifests", params={"api-version": "2021-07-01"})).json()
    assert body["imageName"] == "multi/app" and body["registry"] == "registry.test"
    by_digest = {m["digest"]: m for m in body["manifests"]}
    assert (by_digest[arm]["architecture"], by_digest[arm]["os"], by_digest[arm]["tags"]) == ("arm64", "linux",
                                                                                              ["arm64"])
    assert by_digest[arm]["configMediaType"] == "application/vnd.oci.image.config.v1+json"
    assert by_digest[index]["mediaType"] == OCI_INDEX
    assert by_digest[index]["references"] == [{"digest": amd, "architecture": "amd64", "os": "linux"},
                                              {"digest": arm, "architecture": "arm64", "os": "linux"}]
    one = (await client.get(f"/acr/v1/multi/app/_manifests/{amd.replace(':', '%3A')}")).json()["manifest"]
    assert one["changeableAttributes"] == {"deleteEnabled": True, "writeEnabled": True, "readEnabled": True,
                                           "listEnabled": True}
    assert one["imageSize"] > one.get("size", 0)
    repo = (await client.get("/acr/v1/multi%2Fapp")).json()
    assert (repo["manifestCount"], repo["tagCount"]) == (3, 3)
    assert set(repo) == {"registry", "imageName", "createdTime", "lastUpdateTime", "manifestCount", "tagCount",
                         "changeableAttributes"}


async def test_tag_listing_pages_orders_and_filters(client: httpx.AsyncClient) -> None:
    first = await push_image(client, "paged/app", "b")
    await push_image(client, "paged/app", "a")
    await push_image(client, "paged/app", "c")
    page = await client.get("/acr/v1/paged/app/_tags", params={"n": "2"})
    assert [t["name"] for t in page.json()["tags"]] == ["a", "b"]
    assert page.headers["link"] == '</acr/v1/paged/app/_tags?last=b&n=2>; rel="next"'
    rest = await client.get("/acr/v1/paged/app/_tags", params={"n": "2", "last": "b"})
    assert [t["name"] for t in rest.json()["tags"]] == ["c"] and "link" not in rest.headers
    newest = await client.get("/acr/v1/paged/app/_tags", params={"orderby": "timedesc"})
    assert [t["name"] for t in newest.json()["tags"]] == ["c", "a", "b"]
    only = await client.get("/acr/v1/paged/app/_tags", params={"digest": first})
    assert [t["name"] for t in only.json()["tags"]] == ["b"]
    catalog = await client.get("/acr/v1/_catalog", params={"n": "1"})
    assert catalog.json() == {"repositories": ["paged/app"]} and "link" not in catalog.headers
    assert (await client.get("/acr/v1/nothing/here/_tags")).status_code == 404


async def test_repository_locks_apply_to_every_path(client: httpx.AsyncClient, storage: StorageProbe) -> None:
    digest = await push_image(client, "locked/repo", "v1")
    layer = (await client.get("/v2/locked/repo/manifests/v1")).json()["layers"][0]["digest"]
    response = await client.patch("/acr/v1/locked/repo", json={"writeEnabled": False, "deleteEnabled": False,
                                                               "readEnabled": False, "listEnabled": False})
    assert response.json()["changeableAttributes"] == {"deleteEnabled": False, "writeEnabled": False,
                                                       "readEnabled": False, "listEnabled": False}
    before = await storage.snapshot()
    refused = [
        await client.get("/v2/locked/repo/manifests/v1"),
        await client.get(f"/v2/locked/repo/blobs/{layer}"),
        await client.post("/v2/locked/repo/blobs/uploads/"),
        await client.put("/v2/locked/repo/manifests/v2", content=b"{}", headers={"Content-Type": OCI_MANIFEST}),
        await client.delete(f"/v2/locked/repo/manifests/{digest}"),
        await client.delete(f"/v2/locked/repo/blobs/{layer}"),
        await client.delete("/acr/v1/locked/repo/_tags/v1"),
        await client.delete("/acr/v1/locked/repo"),
    ]
    for response in refused:
        assert response.status_code == 403, response.request.url
        assert response.json()["errors"][0]["code"] == "DENIED"
    assert await storage.snapshot() == before
    assert (await client.get("/acr/v1/_catalog")).json() == {"repositories": []}
    await client.patch("/acr/v1/locked/repo", json={"writeEnabled": True, "deleteEnabled": True,
                                                    "readEnabled": True, "listEnabled": True})
    assert (await client.get("/v2/locked/repo/manifests/v1")).status_code == 200
    deleted = await client.delete("/acr/v1/locked/repo")
    assert deleted.status_code == 202
    assert deleted.json() == {"manifestsDeleted": [digest], "tagsDeleted": ["v1"]}
    assert (await client.get("/acr/v1/locked/repo")).status_code == 404
    assert [r for r in (await storage.rows("repos"))] == []


async def test_manifest_and_tag_locks(client: httpx.AsyncClient) -> None:
    digest = await push_image(client, "locked/item", "v1")
    await client.patch(f"/acr/v1/locked/item/_manifests/{digest}", json={"deleteEnabled": False,
                                                                          "readEnabled": False})
    assert (await client.get("/v2/locked/item/manifests/v1")).status_code == 403
    assert (await client.get(f"/v2/locked/item/manifests/{digest}")).status_code == 403
    assert (await client.delete(f"/v2/locked/item/manifests/{digest}")).status_code == 403
    assert (await client.delete("/v2/locked/item/manifests/v1")).status_code == 202  # the tag itself is not locked
    await client.patch(f"/acr/v1/locked/item/_manifests/{digest}", json={"deleteEnabled": True, "readEnabled": True})
    await push_image(client, "locked/item", "v2")
    await client.patch("/acr/v1/locked/item/_tags/v2", json={"deleteEnabled": False, "listEnabled": False})
    again = await push_image(client, "locked/item", "v2")  # writes stay allowed and keep the lock
    tag = (await client.get("/acr/v1/locked/item/_tags/v2")).json()["tag"]
    assert tag["digest"] == again and tag["changeableAttributes"]["deleteEnabled"] is False
    assert (await client.get("/acr/v1/locked/item/_tags")).json()["tags"] == []
    assert (await client.delete(f"/v2/locked/item/manifests/{again}")).status_code == 403  # a locked tag names it
    assert (await client.delete("/acr/v1/locked/item")).status_code == 403  # so does the repository
    await client.patch("/acr/v1/locked/item/_tags/v2", json={"deleteEnabled": True})
    assert (await client.delete("/acr/v1/locked/item")).status_code == 202
