"""Manifests: put/get/head by tag and digest, media types, references, limits, deletes."""

from __future__ import annotations

import asyncio
import json
import os

import httpx

from tests.oci import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    digest_of,
    push_blob,
    push_image,
)
from tests.storage import StorageProbe


async def test_get_and_head_by_tag_and_digest_return_exact_bytes(client: httpx.AsyncClient) -> None:
    digest, raw = await push_image(client, "library/app", "v1")
    for reference in ("v1", digest):
        got = await client.get(f"/v2/library/app/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
        assert got.status_code == 200
        assert got.content == raw
        assert got.headers["content-type"] == OCI_MANIFEST
        assert got.headers["docker-content-digest"] == digest
        assert got.headers["content-length"] == str(len(raw))
        head = await client.head(f"/v2/library/app/manifests/{reference}")
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["docker-content-digest"] == digest
        assert head.headers["content-length"] == str(len(raw))


async def test_put_by_digest_and_percent_encoded_path(client: httpx.AsyncClient) -> None:
    digest, raw = await push_image(client, "enc/name")
    response = await client.get(f"/v2/enc%2Fname/manifests/{digest.replace(':', '%3A')}")
    assert response.status_code == 200
    assert response.content == raw


async def test_docker_schema2_and_manifest_list(client: httpx.AsyncClient) -> None:
    config, layer = b'{"architecture":"arm64","os":"linux"}', os.urandom(300)
    await push_blob(client, "dock", config)
    await push_blob(client, "dock", layer)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": descriptor("application/vnd.docker.container.image.v1+json", config),
        "layers": [descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", layer)],
    }).encode()
    put = await client.put(f"/v2/dock/manifests/{digest_of(manifest)}", content=manifest,
                           headers={"Content-Type": DOCKER_MANIFEST})
    assert put.status_code == 201
    listing = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [
        descriptor(DOCKER_MANIFEST, manifest, platform={"architecture": "arm64", "os": "linux"})]}).encode()
    put = await client.put("/v2/dock/manifests/multi", content=listing, headers={"Content-Type": DOCKER_LIST})
    assert put.status_code == 201, put.text
    got = await client.get("/v2/dock/manifests/multi", headers={"Accept": f"{DOCKER_LIST}, {DOCKER_MANIFEST}"})
    assert got.content == listing and got.headers["content-type"] == DOCKER_LIST
    refused = await client.get("/v2/dock/manifests/multi", headers={"Accept": DOCKER_MANIFEST})
    assert refused.status_code == 404
    assert refused.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


async def test_index_requires_its_manifests(client: httpx.AsyncClient, storage: StorageProbe) -> None:
    child = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST}).encode()
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": [descriptor(OCI_MANIFEST, child)]}).encode()
    response = await client.put("/v2/idx/manifests/latest", content=index, headers={"Content-Type": OCI_INDEX})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == "MANIFEST_BLOB_UNKNOWN"
    assert error["detail"]["digests"] == [digest_of(child)]
    assert await storage.rows("repos") == []


async def test_missing_blobs_are_named(client: httpx.AsyncClient, storage: StorageProbe) -> None:
    config, layer = b"{}", b"layer"
    await push_blob(client, "refs", config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
                           "layers": [descriptor(OCI_LAYER, layer)]}).encode()
    before = await storage.snapshot()
    response = await client.put("/v2/refs/manifests/v1", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 400
    assert response.json()["errors"][0]["detail"]["digests"] == [digest_of(layer)]
    assert await storage.snapshot() == before


async def test_malformed_manifests_are_invalid_and_store_nothing(
    client: httpx.AsyncClient, storage: StorageProbe
) -> None:
    cases = [
        (b"not json", OCI_MANIFEST),
        (b"[]", OCI_MANIFEST),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST}).encode(), OCI_MANIFEST),
        (json.dumps({"schemaVersion": 1, "name": "x"}).encode(),
         "application/vnd.docker.distribution.manifest.v1+json"),
        (json.dumps({"schemaVersion": 2, "config": {}, "layers": []}).encode(), "application/x-unknown"),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode(), OCI_MANIFEST),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {"mediaType": OCI_CONFIG,
          "digest": "sha256:zz", "size": 2}, "layers": []}).encode(), OCI_MANIFEST),
    ]
    for raw, content_type in cases:
        response = await client.put("/v2/bad/manifests/v1", content=raw, headers={"Content-Type": content_type})
        assert response.status_code == 400, raw
        assert response.json()["errors"][0]["code"] == "MANIFEST_INVALID", raw
    assert storage.is_empty(await storage.snapshot())


async def test_digest_reference_must_match_content(client: httpx.AsyncClient, storage: StorageProbe) -> None:
    raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode()
    wrong = digest_of(b"something else")
    response = await client.put(f"/v2/dg/manifests/{wrong}", content=raw, headers={"Content-Type": OCI_INDEX})
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "DIGEST_INVALID"
    assert await storage.rows("repos") == []


async def test_four_mib_manifest_is_accepted_and_larger_is_413(client: httpx.AsyncClient) -> None:
    limit = 4 * 1024 * 1024
    base = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [], "annotations": {"pad": ""}}
    padding = limit - len(json.dumps(base).encode())
    base["annotations"] = {"pad": "x" * padding}
    raw = json.dumps(base).encode()
    assert len(raw) == limit
    accepted = await client.put("/v2/big/manifests/max", content=raw, headers={"Content-Type": OCI_INDEX})
    assert accepted.status_code == 201, accepted.text
    got = await client.get("/v2/big/manifests/max", headers={"Accept": OCI_INDEX})
    assert got.content == raw
    too_big = raw[:-2] + b'x"}}'
    refused = await client.put("/v2/big/manifests/over", content=too_big, headers={"Content-Type": OCI_INDEX})
    assert refused.status_code == 413
    assert (await client.head("/v2/big/manifests/over")).status_code == 404


async def test_invalid_names_tags_and_traversal(client: httpx.AsyncClient, storage: StorageProbe) -> None:
    raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode()
    for path, code in [
        ("/v2/UPPER/manifests/v1", "NAME_INVALID"),
        ("/v2/a//b/manifests/v1", "NAME_INVALID"),
        ("/v2/..%2F..%2Fetc/manifests/v1", "NAME_INVALID"),
        ("/v2/ok/../../x/manifests/v1", "NAME_INVALID"),
        ("/v2/-lead/manifests/v1", "NAME_INVALID"),
        (f"/v2/{'a' * 256}/manifests/v1", "NAME_INVALID"),
        ("/v2/ok/manifests/.bad", "TAG_INVALID"),
        (f"/v2/ok/manifests/{'t' * 129}", "TAG_INVALID"),
    ]:
        response = await client.put(path, content=raw, headers={"Content-Type": OCI_INDEX})
        assert response.status_code in (400, 404), path
        assert response.json()["errors"][0]["code"] in (code, "NOT_FOUND"), path
    assert await storage.rows("repos") == []


async def test_unknown_manifest_and_repository(client: httpx.AsyncClient) -> None:
    for reference in ("nope", digest_of(b"nope")):
        response = await client.get(f"/v2/nothing/manifests/{reference}")
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        head = await client.head(f"/v2/nothing/manifests/{reference}")
        assert head.status_code == 404 and head.content == b""


async def test_delete_manifest_removes_its_tags(client: httpx.AsyncClient) -> None:
    digest, _ = await push_image(client, "del", "one")
    raw = (await client.get("/v2/del/manifests/one")).content
    await client.put("/v2/del/manifests/two", content=raw, headers={"Content-Type": OCI_MANIFEST})
    assert (await client.delete(f"/v2/del/manifests/{digest}")).status_code == 202
    for reference in ("one", "two", digest):
        assert (await client.get(f"/v2/del/manifests/{reference}")).status_code == 404
    assert (await client.get("/v2/del/tags/list")).json()["tags"] == []
    assert (await client.delete(f"/v2/del/manifests/{digest}")).status_code == 404


async def test_delete_tag_keeps_manifest(client: httpx.AsyncClient) -> None:
    digest, _ = await push_image(client, "deltag", "v1")
    assert (await client.delete("/v2/deltag/manifests/v1")).status_code == 202
    assert (await client.get("/v2/deltag/manifests/v1")).status_code == 404
    assert (await client.get(f"/v2/deltag/manifests/{digest}")).status_code == 200
    assert (await client.delete("/v2/deltag/manifests/v1")).status_code == 404


async def test_delete_blob(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "delblob", b"bytes")
    assert (await client.delete(f"/v2/delblob/blobs/{digest}")).status_code == 202
    assert (await client.head(f"/v2/delblob/blobs/{digest}")).status_code == 404
    response = await client.delete(f"/v2/delblob/blobs/{digest}")
    assert response.status_code == 404 and response.json()["errors"][0]["code"] == "BLOB_UNKNOWN"


async def test_concurrent_pushes_of_one_tag_leave_a_consistent_tag(client: httpx.AsyncClient) -> None:
    pushed = [await push_image(client, "race") for _ in range(6)]

    async def tag(raw: bytes) -> int:
        response = await client.put("/v2/race/manifests/latest", content=raw, headers={"Content-Type": OCI_MANIFEST})
        return response.status_code

    statuses = await asyncio.gather(*(tag(raw) for _, raw in pushed))
    assert set(statuses) == {201}
    got = await client.get("/v2/race/manifests/latest")
    assert (got.headers["docker-content-digest"], got.content) in [(d, r) for d, r in pushed]


async def test_unsupported_method_and_unknown_route(client: httpx.AsyncClient) -> None:
    response = await client.post("/v2/x/manifests/v1")
    assert response.status_code == 405
    assert response.json()["errors"][0]["code"] == "UNSUPPORTED"
    response = await client.get("/v3/")
    assert response.status_code == 404


async def test_helm_chart_as_oci_artifact(client: httpx.AsyncClient) -> None:
    config = json.dumps({"name": "mychart", "version": "0.1.0", "apiVersion": "v2"}).encode()
    chart = os.urandom(2048)
    await push_blob(client, "charts/mychart", config)
    await push_blob(client, "charts/mychart", chart)
    manifest = json.dumps({
        "schemaVersion": 2,
        "config": descriptor("application/vnd.cncf.helm.config.v1+json", config),
        "layers": [descriptor("application/vnd.cncf.helm.chart.content.v1.tar+gzip", chart)],
    }).encode()
    put = await client.put("/v2/charts/mychart/manifests/0.1.0", content=manifest,
                           headers={"Content-Type": OCI_MANIFEST})
    assert put.status_code == 201, put.text
    got = await client.get("/v2/charts/mychart/manifests/0.1.0", headers={"Accept": OCI_MANIFEST})
    assert got.content == manifest and got.headers["content-type"] == OCI_MANIFEST
